"""What `lighter sweep expand|status|results|best|run` print; their options and help are entries of the command table.

The sweep modules load inside each function (lazy: `lighter --help` imports this file, and they import yaml).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lighter.errors import ConfigError, did_you_mean
from lighter.utils.text_table import render

STATUS_FORMATS = ("table", "json")
LAUNCHER_COUNTS = ("gpus", "cpus", "mem_gb")  # slurm flags that take a whole number


def _axes_text(axes: dict) -> str:
    return " ".join(f"{key}={json.dumps(value)}" for key, value in axes.items()) or "(no axes)"


def _trial_rows(found: list, out: Path, statuses: list | None = None) -> list[list[str]]:
    """Table rows for (trial, record) pairs; `statuses` when the caller has them, else from the records."""
    from lighter.run.status import trial_status  # lazy: yaml, psutil

    if statuses is None:
        statuses = [trial_status(trial.dir, record) for trial, record in found]
    rows = []
    for (trial, record), status in zip(found, statuses, strict=True):
        name = str(Path(trial.dir).relative_to(Path(out).resolve()))
        note = "" if record.get("in_sweep", True) else "no longer in the sweep"
        rows.append([name, _axes_text(record.get("axes") or {}), status.value, note])
    return rows


def _out_dir(out: str | None, *, exists: bool = True) -> Path:
    """The --out folder (default runs/sweeps below the current directory); it must exist unless `exists` is off."""
    from lighter.sweep.expand import DEFAULT_OUT  # lazy: yaml

    out_dir = Path(out).expanduser().resolve() if out is not None else Path.cwd() / DEFAULT_OUT
    if exists and not out_dir.is_dir():
        raise ConfigError(
            f"'{out_dir}' does not exist", suggestion="Name the --out folder of `lighter sweep expand` or `run`."
        )
    return out_dir


def expand(
    root: str | None = None,
    out: str | None = None,
    modes: str | None = None,
    datasets: str | None = None,
    select: str | None = None,
    mode: str | None = None,
) -> None:
    """Write the trials of the cascade at ROOT (a folder of cfg.yaml files, or one config file); run nothing."""
    from lighter.sweep.expand import expand_records  # lazy: yaml
    from lighter.sweep.trial import trials_count  # lazy: as above

    if root is None:
        raise ConfigError(
            "no sweep root given",
            suggestion="Name a cascade folder or one config file: lighter sweep expand configs/cascade",
        )
    out_dir = _out_dir(out, exists=False)
    found = expand_records(root, out_dir, modes=modes, datasets=datasets, select=select, mode=mode)
    print(render(["trial", "axes", "status", "note"], _trial_rows(found, out_dir)))
    print(f"\n{trials_count(len(found))} in {out_dir}")


def status(out: str | None = None, format: str = "table") -> None:  # noqa: A002 - the flag is --format
    """Every trial under OUT (default runs/sweeps) with its axes and status (from its records, and from squeue for
    trials on SLURM); --format table|json."""
    from lighter.run.status import trial_status  # lazy: yaml, psutil
    from lighter.sweep.expand import load_trials  # lazy: yaml
    from lighter.sweep.slurm_jobs import as_scheduled  # lazy: as above

    if format not in STATUS_FORMATS:
        hint = did_you_mean(format, STATUS_FORMATS, fallback="Formats: table, json.")
        raise ConfigError(f"--format: unknown format {format!r}", suggestion=hint)
    out_dir = _out_dir(out)
    found = [(trial, trial.record()) for trial in load_trials(out_dir)]
    statuses = as_scheduled([r for _, r in found], [trial_status(trial.dir, record) for trial, record in found])
    if format == "json":
        records = [
            {**record, "status": status.value, "dir": str(trial.dir)}
            for (trial, record), status in zip(found, statuses, strict=True)
        ]
        print(json.dumps(records, indent=2, default=str))
        return
    rows = _trial_rows(found, out_dir, statuses)
    print(render(["trial", "axes", "status", "note"], rows))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[2]] = counts.get(row[2], 0) + 1
    print("\n" + ", ".join(f"{n} {s}" for s, n in counts.items()) if counts else f"no trials under {out_dir}")


def _searches(trials: list) -> list:
    """Searched leaves' results; optuna is imported only when there is one."""
    if not any(isinstance(t.record().get("study"), dict) for t in trials):
        return []
    from lighter.sweep.search_results import search_results  # lazy: optuna for searched leaves only (0.4 s)

    return search_results(trials)


def _print_searches(searches: list) -> None:
    from lighter.utils.text_table import render  # lazy: yaml

    print("\nsearches")
    rows = []
    for s in searches:
        best = s.best or {}
        values = _axes_text(best.get("values") or {}) if best else ""
        value = f"{best['value']:.6g}" if best else ""
        c = s.counts
        done = f"{c['complete'] + c['pruned']}/{s.budget}"
        counts = [c["complete"], c["pruned"], c["failed"], c["running"]]
        rows.append([s.leaf, s.sampler, done, *counts, best.get("trial", ""), f"{s.monitor} ({s.mode})", value, values])
    header = ["leaf", "sampler", "done", "complete", "pruned", "failed", "running", "best", "monitor", "value"]
    print(render([*header, "values"], rows))
    for s in searches:
        if s.importances:
            shown = ", ".join(f"{k} {v:.2f}" for k, v in s.importances.items())
            print(f"{s.leaf}: parameter importances (Optuna, fANOVA): {shown}")
        elif s.note:
            print(f"{s.leaf}: {s.note}")


def results(out: str | None = None, csv: str | None = None, format: str = "table") -> None:  # noqa: A002
    """Final and best validation metrics and test metrics per trial; mean ± std over seeds per experiment leaf;
    per searched leaf, its counts, best trial and parameter importances. --format table|json."""
    from lighter.sweep import results as res  # lazy: yaml
    from lighter.sweep.expand import load_trials  # lazy: as above

    if format not in STATUS_FORMATS:
        hint = did_you_mean(format, STATUS_FORMATS, fallback="Formats: table, json.")
        raise ConfigError(f"--format: unknown format {format!r}", suggestion=hint)
    out_dir = _out_dir(out)
    trials = load_trials(out_dir)
    found = res.collect(trials)
    searches = _searches(trials)
    if format == "json":
        rows = [
            {
                "trial": str(r.trial.dir.relative_to(out_dir)),
                "status": r.status.value,
                "record": r.record,
                "values": r.values,
            }
            for r in found
        ]
        print(json.dumps({"trials": rows, "searches": [s.as_dict() for s in searches]}, indent=2, default=str))
        return
    value_columns = res.columns(found)
    rows = []
    for r in found:
        name = str(r.trial.dir.relative_to(out_dir))
        status = r.status.value + ("" if r.record.get("in_sweep", True) else " (not in sweep)")
        axes = _axes_text(r.record.get("axes") or {})
        rows.append([name, status, axes, *(r.values.get(c) for c in value_columns)])
    print(render(["trial", "status", "axes", *value_columns], rows))
    summaries = res.summarize(found)
    if summaries:
        print("\nexperiments: mean ± std over seeds (done trials)")
        header, body = res.summary_table(summaries, value_columns)
        print(render(header, body))
    if searches:
        _print_searches(searches)
    if csv is None:
        return
    path = Path(csv).expanduser()
    summary_path = res.write_csv(path, found, summaries, value_columns)
    print(f"\nwrote {path}")
    if summary_path is not None:
        print(f"wrote {summary_path}")


def _count(value: str, option: str) -> int:
    """A positive whole number given on the command line."""
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{option} takes a whole number of at least 1, got '{value}'", suggestion=f"e.g. {option} 2")
    return number


def _seeds(text: Any) -> list[int]:
    """`--seeds 0,1,2` (fire may hand over a tuple or an int)."""
    parts = text if isinstance(text, (list, tuple)) else str(text).split(",")
    try:
        return [int(str(p).strip()) for p in parts if str(p).strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers, got '{text}'", suggestion="e.g. --seeds 0,1,2") from None


def best(leaf: str | None = None, to: str | None = None, top: str = "1", seeds: Any = None) -> None:
    """Write a searched leaf's best trial (or --top K) as experiment leaves of the cascade, over --seeds."""
    from lighter.sweep.best import write_best  # lazy: optuna (0.4 s)

    if leaf is None or to is None:
        raise ConfigError(
            "`lighter sweep best` needs a searched leaf's output folder and --to",
            suggestion="e.g. lighter sweep best runs/sweeps/sweep/digits/cnn/search --to "
            "configs/cascade/experiment/digits/cnn/best --seeds 0,1,2",
        )
    found = Path(leaf).expanduser()
    if not found.is_dir():
        raise ConfigError(f"'{found}' does not exist", suggestion="Name OUT/<leaf> of a searched `lighter sweep run`.")
    written = write_best(found, Path(to).expanduser(), top=_count(top, "--top"), seeds=_seeds(seeds) if seeds else None)
    for path in written:
        print(f"wrote {path}")
    print("Run them over their seeds with `lighter sweep run <cascade root> --modes experiment`.")


def run(
    root: str,
    out: str | None = None,
    jobs: str = "1",
    executor: str = "local",
    fail_fast: bool = False,
    rerun_stale: bool = False,
    cold: bool = False,
    gpus_per_trial: str = "1",
    modes: str | None = None,
    datasets: str | None = None,
    select: str | None = None,
    mode: str | None = None,
    partition: str | None = None,
    time: str | None = None,
    gpus: str | None = None,
    cpus: str | None = None,
    mem_gb: str | None = None,
    cancel_on_stop: bool = False,
) -> None:
    """Expand, then run every trial that is not complete; exit 1 when a trial failed, 130/143 on a signal."""
    from lighter.sweep.execute import EXECUTORS  # lazy: yaml
    from lighter.sweep.sweep_run import run_trials  # lazy: yaml and the sweep runner, not for --help

    if executor not in EXECUTORS:
        raise ConfigError(f"--executor: unknown executor '{executor}'", suggestion=did_you_mean(executor, EXECUTORS))
    flags = {"partition": partition, "time": time, "gpus": gpus, "cpus": cpus, "mem_gb": mem_gb}
    launcher = {
        key: _count(value, f"--{key.replace('_', '-')}") if key in LAUNCHER_COUNTS else value
        for key, value in flags.items()
        if value is not None
    }
    if cancel_on_stop:
        launcher["cancel_on_stop"] = True
    result = run_trials(
        root,
        out,
        modes,
        datasets,
        _count(jobs, "--jobs"),
        select=select,
        mode=mode,
        executor=executor,
        fail_fast=bool(fail_fast),
        rerun_stale=bool(rerun_stale),
        launcher=launcher,
        warm=not cold,
        gpus_per_trial=_count(gpus_per_trial, "--gpus-per-trial"),
    )
    if result.exit_code:
        raise SystemExit(result.exit_code)


def cancel(out: str | None = None) -> None:
    """scancel the SLURM array tasks of the trials under OUT that SLURM still holds."""
    from lighter.sweep.expand import load_trials  # lazy: yaml
    from lighter.sweep.slurm_cancel import cancel as cancel_tasks  # lazy: yaml

    out_dir = _out_dir(out)
    cancelled = cancel_tasks([trial.dir for trial in load_trials(out_dir)])
    if not cancelled:
        print(f"no trial under {out_dir} is queued or running on SLURM")
        return
    for trial, task in sorted(cancelled.items()):
        print(f"cancelled {task}  {Path(trial).relative_to(out_dir)}")
    print(f"\n{len(cancelled)} cancelled; `lighter sweep run` continues them (a started one from its checkpoint)")
