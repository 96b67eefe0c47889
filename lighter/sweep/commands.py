"""What `lighter sweep expand|status|results` do; their help and options are entries of lighter/cli.py's table.

Imports nothing heavy at module level: `lighter --help` loads this file.
"""

from __future__ import annotations

import json


def _axes_text(axes: dict) -> str:
    return " ".join(f"{key}={json.dumps(value)}" for key, value in axes.items()) or "(no axes)"


def _trial_rows(found: list, out) -> list[list[str]]:
    """Table rows for (trial, record) pairs."""
    from pathlib import Path

    from lighter.sweep.trial import status_of

    rows = []
    for trial, record in found:
        name = str(Path(trial.dir).relative_to(Path(out).resolve()))
        note = "" if record.get("in_sweep", True) else "no longer in the sweep"
        rows.append([name, _axes_text(record.get("axes") or {}), status_of(record).value, note])
    return rows


def expand(
    root: str | None = None,
    out: str | None = None,
    modes: str | None = None,
    datasets: str | None = None,
    select: str | None = None,
    mode: str | None = None,
) -> None:
    """Write the trials of the cascade at ROOT (a folder of cfg.yaml files, or one config file); run nothing.

    --out OUT       where trials go (default: runs/sweeps below the current directory)
    --modes M,...   only leaves of these modes (sweep, experiment)
    --datasets D,.. only leaves of these datasets (the folder below the mode folder)
    --select GLOB   only leaves whose path below ROOT matches GLOB, e.g. 'sweep/digits/*'
    --mode MODE     the mode of a root without mode folders, e.g. a single file (default: sweep)
    """
    from pathlib import Path

    from lighter.config.errors import ConfigError
    from lighter.sweep.expand import DEFAULT_OUT, expand_records
    from lighter.sweep.table import render

    if root is None:
        raise ConfigError(
            "no sweep root given",
            suggestion="Name a cascade folder or one config file: lighter sweep expand configs/cascade",
        )
    out_dir = Path(out).expanduser().resolve() if out is not None else Path.cwd() / DEFAULT_OUT
    found = expand_records(root, out_dir, modes=modes, datasets=datasets, select=select, mode=mode)
    print(render(["trial", "axes", "status", "note"], _trial_rows(found, out_dir)))
    print(f"\n{len(found)} trials in {out_dir}")


def status(out: str | None = None, format: str = "table") -> None:  # noqa: A002 - the flag is --format
    """Every trial under OUT (default runs/sweeps) with its axes and status; --format table|json."""
    from lighter.config.errors import ConfigError, did_you_mean
    from lighter.sweep.expand import load_trials
    from lighter.sweep.table import render
    from lighter.sweep.trial import status_of

    formats = ("table", "json")
    if format not in formats:
        hint = did_you_mean(format, formats, fallback="Formats: table, json.")
        raise ConfigError(f"--format: unknown format {format!r}", suggestion=hint)
    out_dir = _out_dir(out)
    found = [(trial, trial.record()) for trial in load_trials(out_dir)]
    if format == "json":
        records = [{**record, "status": status_of(record).value, "dir": str(trial.dir)} for trial, record in found]
        print(json.dumps(records, indent=2, default=str))
        return
    rows = _trial_rows(found, out_dir)
    print(render(["trial", "axes", "status", "note"], rows))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[2]] = counts.get(row[2], 0) + 1
    print("\n" + ", ".join(f"{n} {s}" for s, n in counts.items()) if counts else f"no trials under {out_dir}")


def _out_dir(out: str | None):
    from pathlib import Path

    from lighter.config.errors import ConfigError
    from lighter.sweep.expand import DEFAULT_OUT

    out_dir = Path(out).expanduser().resolve() if out is not None else Path.cwd() / DEFAULT_OUT
    if not out_dir.is_dir():
        raise ConfigError(
            f"'{out_dir}' does not exist", suggestion="Name the --out folder of `lighter sweep expand` or `run`."
        )
    return out_dir


def _write_csv(path, header: list[str], rows: list[list]) -> None:
    import csv
    import io

    from lighter.sweep.files import write_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())


def results(out: str | None = None, csv: str | None = None) -> None:
    """Final and best validation metrics and test metrics per trial; mean ± std over seeds per experiment leaf."""
    from pathlib import Path

    from lighter.sweep import results as res
    from lighter.sweep.expand import load_trials
    from lighter.sweep.table import render

    out_dir = _out_dir(out)
    found = res.collect(load_trials(out_dir))
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
        summary_columns = sorted({c for s in summaries for c in s.stats}, key=value_columns.index)
        print("\nexperiments: mean ± std over seeds (done trials)")
        print(
            render(
                ["leaf", "n", *summary_columns],
                [
                    [s.leaf, s.n, *(res.mean_std(s.stats[c]) if c in s.stats else "" for c in summary_columns)]
                    for s in summaries
                ],
            )
        )
    if csv is None:
        return
    path = Path(csv).expanduser()
    axis_keys = list(dict.fromkeys(k for r in found for k in (r.record.get("axes") or {})))
    _write_csv(
        path,
        ["leaf", "trial", "status", "in_sweep", *axis_keys, *value_columns],
        [
            [
                r.record.get("leaf", ""),
                r.trial.name,
                r.status.value,
                r.record.get("in_sweep", True),
                *((r.record.get("axes") or {}).get(k, "") for k in axis_keys),
                *(r.values.get(c, "") for c in value_columns),
            ]
            for r in found
        ],
    )
    print(f"\nwrote {path}")
    if summaries:
        summary_path = path.with_name(f"{path.stem}_summary{path.suffix or '.csv'}")
        header = ["leaf", "n"]
        for c in summary_columns:
            header += [f"{c}/mean", f"{c}/std", f"{c}/n"]
        body = []
        for s in summaries:
            row = [s.leaf, s.n]
            for c in summary_columns:
                mean, spread, n = s.stats.get(c, ("", "", 0))
                row += [mean, "" if spread is None else spread, n]
            body.append(row)
        _write_csv(summary_path, header, body)
        print(f"wrote {summary_path}")


def run(root: str, **options: str) -> None:
    """Expand, then run every trial that is not complete (lighter/sweep/run.py)."""
    from lighter.sweep.run import command

    command(root, **options)
