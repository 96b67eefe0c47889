"""`lighter sweep run` for a searched leaf: trials asked from its study as slots free up, until the budget is met.

1. The study is created (or loaded) once, before any trial starts.
2. Trials the study has as running, but whose runner is gone (killed), continue first: each resumes from its
   checkpoint or restarts in its own directory (lighter/sweep/attempt.py), under the same trial number.
3. While fewer than `trials` trials are complete, pruned or running (in this runner or another on the same study),
   a free slot asks the study for a new trial: its number names the directory, its values fill `config.yaml`.
4. Each trial's end is told to the study from its `trial.yaml`: done (with the monitored value of its last
   validation epoch), pruned or failed. A failed trial is replaced by a new one; a config error, or as many
   failures as the budget, stops the asking.

Running it again continues where it stopped; failed trials are never rerun (their numbers stay theirs).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from lighter.errors import ConfigError, Location
from lighter.names import SEP
from lighter.sweep.execute import SweepRun, run_dirs
from lighter.sweep.expand import LeafPlan
from lighter.sweep.search import SEARCH_KEY
from lighter.sweep.study import check_url, open_study
from lighter.sweep.trial import Trial

CONFIG_ERROR = 2  # a trial's exit code when its config is wrong: every other trial would fail the same way
STORAGE_KEY = "storage"  # in the `launcher:` block: the study's database URL


def run_search(
    plan: LeafPlan,
    out: Path,
    *,
    jobs: int = 1,
    executor: str = "local",
    fail_fast: bool = False,
    launcher: Mapping[str, Any] | None = None,
    warm: bool = True,
    gpus_per_trial: int = 1,
    stream: TextIO | None = None,
) -> SweepRun:
    """Run the searched leaf until `trials` of its study's trials are complete or pruned; see the module's steps."""
    search = plan.search
    assert search is not None
    if executor != "local":
        raise ConfigError(
            f"a `{search.sampler}` search runs with the local executor; --executor {executor} runs grids only",
            key=SEARCH_KEY,
            location=plan.loaded.where(SEARCH_KEY) or Location(str(plan.leaf.file)),
            suggestion="Run several `lighter sweep run --jobs N` on machines that share the study (launcher: storage).",
        )
    url = (launcher or {}).get(STORAGE_KEY)
    if url is not None:
        check_url(str(url), "launcher::storage")
    leaf = open_study(plan, out, None if url is None else str(url))
    resumed = leaf.to_continue()
    stop: list[Path] = []  # the trial that made the runner stop asking (a config error)
    failures = 0

    def more() -> Path | None:
        if stop or failures >= search.trials:
            return None
        return leaf.ask()

    def ended(trial: Path, status: str, code: int) -> None:
        nonlocal failures
        leaf.tell(trial)
        if status == "failed":
            failures += 1
            if code == CONFIG_ERROR:
                stop.append(trial)

    counted = leaf.counted()
    name = plan.leaf.name or leaf.leaf_dir.name
    headline = (
        f"{name}: {search.sampler} search, {counted} of {search.trials} trials complete or pruned"
        + (f", {len(resumed)} to continue" if resumed else "")
        + f" (study {leaf.url})"
    )
    result = run_dirs(
        resumed, out, jobs=jobs, fail_fast=fail_fast, warm=warm, gpus_per_trial=gpus_per_trial, stream=stream,
        more=None if leaf.full() and not resumed else more, ended=ended, headline=headline,
    )  # fmt: skip
    result.complete_before += counted
    if stop:
        raise _config_error(plan, Trial(stop[0]))
    return result


def _config_error(plan: LeafPlan, trial: Trial) -> ConfigError:
    """A trial's config error as the leaf's: a monitor that is never logged is `search::monitor`'s."""
    tail = str(trial.record().get("error_tail") or "")
    lines = [line for line in tail.splitlines() if line.strip()]
    about_monitor = plan.search is not None and f"monitors '{plan.search.monitor}'" in tail
    key = f"{SEARCH_KEY}{SEP}monitor" if about_monitor else SEARCH_KEY
    return ConfigError(
        f"{trial.name} stopped with a config error, so the search stopped:\n  " + "\n  ".join(lines[-6:]),
        key=key,
        location=plan.loaded.where(key) or Location(str(plan.leaf.file)),
        suggestion=f"Fix the config and run again; the trial's output is in {trial.dir / 'output.log'}.",
    )
