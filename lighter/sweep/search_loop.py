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
With `--executor slurm` the same loop runs in each task of a job array (`worker`), all on the one study: see
lighter/sweep/slurm_search.py.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from lighter.errors import ConfigError, Location, error_line
from lighter.names import SEP, Status
from lighter.run.lifecycle import EXIT_CODES
from lighter.sweep import slurm_jobs
from lighter.sweep.events import Ended, Reporter
from lighter.sweep.execute import SweepInterrupted, SweepRun, run_dirs, sigterm_raises
from lighter.sweep.expand import LeafPlan
from lighter.sweep.search_block import SEARCH_KEY
from lighter.sweep.slurm_search import Watch, submit, wait, worker_count, worker_log
from lighter.sweep.study import LeafStudy, check_url, default_storage, open_study
from lighter.sweep.trial import Trial

CONFIG_ERROR = EXIT_CODES[
    "config_error"
]  # a trial's exit code when its config is wrong: every other trial would fail the same way
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
    worker_index: int = 0,
) -> SweepRun:
    """Run the searched leaf until `trials` of its study's trials are complete or pruned; see the module's steps."""
    search = plan.search
    assert search is not None
    url = (launcher or {}).get(STORAGE_KEY)
    if url is not None:
        check_url(str(url), "launcher::storage")
    leaf = open_study(plan, out, None if url is None else str(url), worker=worker_index)
    resumed = leaf.to_continue()
    if executor == "slurm":
        return _on_slurm(plan, out, leaf, resumed, jobs=jobs, launcher=launcher or {}, stream=stream,
                         gpus_per_trial=gpus_per_trial)  # fmt: skip
    stop: list[Path] = []  # the trial that made the runner stop asking (a config error)
    failures = 0

    def more() -> Path | None:
        if stop or failures >= search.trials:
            return None
        return leaf.ask()

    def ended(trial: Path, status: str, code: int) -> None:
        nonlocal failures
        leaf.tell(trial)
        if status == Status.FAILED:
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


def worker(plan: LeafPlan, out: str, url: str | None, index: int, gpus_per_trial: int) -> int:
    """What one SLURM array task of a searched leaf runs: the local loop, one trial at a time, on the leaf's study;
    its exit code (2 when a trial's config is wrong)."""
    launcher = None if url is None else {STORAGE_KEY: url}
    try:
        run = run_search(plan, Path(out), launcher=launcher, gpus_per_trial=gpus_per_trial, worker_index=index)
    except ConfigError as err:
        print(error_line(err.render()), file=sys.stderr, flush=True)
        return CONFIG_ERROR
    return run.exit_code


def _on_slurm(
    plan: LeafPlan,
    out: Path,
    leaf: LeafStudy,
    resumed: list[Path],
    *,
    jobs: int,
    launcher: Mapping[str, Any],
    stream: TextIO | None,
    gpus_per_trial: int,
) -> SweepRun:
    """Submit the workers of a searched leaf as one job array and wait for them (lighter/sweep/slurm_search.py)."""
    search = leaf.search
    counted = leaf.counted()
    reporter = Reporter(out, stream)
    result = SweepRun(out, reporter.ended, counted)
    name = plan.leaf.name or leaf.leaf_dir.name
    headline = f"{name}: {search.sampler} search, {counted} of {search.trials} trials complete or pruned"
    if leaf.full() and not resumed:
        reporter.say(headline + f" (study {leaf.url})")
        reporter.say(reporter.summary(counted))
        return result
    workers = worker_count(jobs, launcher, search.trials - counted)
    url = None if leaf.url == default_storage(leaf.leaf_dir) else leaf.url
    reporter.say(
        headline + (f", {len(resumed)} to continue" if resumed else "")
        + f" (study {leaf.url}); {workers} SLURM worker{'s' if workers != 1 else ''} pull trials from it"
    )  # fmt: skip
    watch = Watch(leaf.leaf_dir, reporter)
    cluster, tasks = submit(out, launcher, worker, [(plan, str(out), url, i, gpus_per_trial) for i in range(workers)])
    array = str(tasks[0].job_id).split("_")[0]
    reporter.say(f"submitted {workers} search worker{'s' if workers != 1 else ''} as job array {array}")
    try:
        with sigterm_raises():
            codes = wait(tasks, watch, cluster, launcher)
    except (KeyboardInterrupt, SweepInterrupted) as stop:
        result.interrupted = stop.signal_name if isinstance(stop, SweepInterrupted) else "SIGINT"
        if launcher.get("cancel_on_stop"):
            slurm_jobs.cancel([array])
            reporter.say(f"stopped by {result.interrupted}; cancelled job array {array}; a rerun continues the search.")
        else:
            reporter.say(
                f"stopped waiting ({result.interrupted}); the workers of job array {array} keep pulling trials: "
                f"`scancel {array}` stops them, and the same `sweep run` continues the search."
            )
        reporter.say(reporter.summary(counted))
        return result
    for trial in watch.left_running():  # its worker was stopped (time limit, scancel): a rerun continues it
        reporter.end(Ended(trial, Status.INTERRUPTED.value, 0.0, 1))
    leaf.to_continue()  # a worker stopped between a trial's end and telling the study: told now
    reporter.say(reporter.summary(counted))
    config_errors = [e.trial for e in result.ended if e.status == Status.FAILED and e.exit_code == CONFIG_ERROR]
    if config_errors:
        raise _config_error(plan, Trial(config_errors[0]))
    if CONFIG_ERROR in codes:  # before any trial: the worker's own log says why
        log = worker_log(tasks[codes.index(CONFIG_ERROR)])
        raise ConfigError(
            f"search worker {codes.index(CONFIG_ERROR)} stopped with a config error before running a trial",
            key=SEARCH_KEY,
            location=plan.loaded.where(SEARCH_KEY) or Location(str(plan.leaf.file)),
            suggestion=f"Its log says why: {log}",
        )
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
