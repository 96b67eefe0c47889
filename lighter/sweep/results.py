"""What each trial reached: final and best value of every validation metric, test metrics, and per-leaf mean ± std.

Values come from the trial's `metrics.csv` (the CSV logger's epoch values: `val/loss/epoch`,
`val/metrics/accuracy/epoch`, or the older `val/loss`, `val/metrics/accuracy`), else from its `batch_log.csv`
(the plain mean of each epoch's val batches). A metric is named `val/<name>` or `test/<name>`. "Best" is the
lowest value for names that hold loss, error or distance, the highest otherwise. Experiment leaves get the mean,
sample standard deviation and count over their done trials (in the sweep) of every value.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lighter.names import METRICS_FILE, Status
from lighter.run.files import write_atomic
from lighter.run.status import trial_status
from lighter.sweep.trial import BATCH_LOG_FILE, Trial

MODES = ("val", "test")
LOWER_IS_BETTER = re.compile(r"loss|error|err\b|mse|mae|rmse|distance|hausdorff|perplexity", re.IGNORECASE)
FINAL, BEST = "final", "best"


def short_name(column: str) -> tuple[str, str] | None:
    """`val/metrics/accuracy/epoch` -> ("val", "accuracy"); None for step values and other modes' columns."""
    parts = column.split("/")
    if len(parts) < 2 or parts[0] not in MODES or parts[-1] == "step" or column.endswith("_step"):
        return None
    parts = [p for p in parts[1:] if p not in ("metrics", "epoch")]
    name = "/".join(parts).removesuffix("_epoch")
    return (column.split("/")[0], name) if name else None


def lower_is_better(name: str) -> bool:
    return bool(LOWER_IS_BETTER.search(name))


def _number(text: str | None) -> float | None:
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _series_from_metrics(path: Path) -> dict[tuple[str, str], list[float]]:
    series: dict[tuple[str, str], list[float]] = defaultdict(list)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        names = {c: short_name(c) for c in reader.fieldnames or ()}
        for row in reader:
            for column, key in names.items():
                value = _number(row.get(column))
                if key is not None and value is not None:
                    series[key].append(value)
    return series


def _series_from_batch_log(path: Path) -> dict[tuple[str, str], list[float]]:
    """Per mode and column, the mean over each epoch's batches, epoch by epoch."""
    sums: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    skip = {"epoch", "mode", "batch", "step", "lr", "grad_norm", "time"}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            mode = row.get("mode")
            epoch = _number(row.get("epoch"))
            if mode not in MODES or epoch is None:
                continue
            for column, text in row.items():
                value = _number(text)
                if column not in skip and value is not None:
                    sums[(mode, column)][int(epoch)].append(value)
    return {key: [statistics.fmean(v) for _, v in sorted(per_epoch.items())] for key, per_epoch in sums.items()}


def trial_values(trial_dir: Path) -> dict[str, float]:
    """`val/<name>/final`, `val/<name>/best` and `test/<name>` for one trial directory; empty if it logged nothing."""
    metrics, batch_log = trial_dir / METRICS_FILE, trial_dir / BATCH_LOG_FILE
    if metrics.is_file():
        series = _series_from_metrics(metrics)
    elif batch_log.is_file():
        series = _series_from_batch_log(batch_log)
    else:
        return {}
    values: dict[str, float] = {}
    for (mode, name), seq in sorted(series.items()):
        if not seq:
            continue
        if mode == "test":
            values[f"test/{name}"] = seq[-1]
        else:
            values[f"val/{name}/{FINAL}"] = seq[-1]
            values[f"val/{name}/{BEST}"] = min(seq) if lower_is_better(name) else max(seq)
    return values


@dataclass
class TrialResult:
    trial: Trial
    record: dict[str, Any]
    values: dict[str, float]

    @property
    def status(self) -> Status:
        return trial_status(self.trial.dir, self.record)


@dataclass
class Summary:
    """Mean, sample standard deviation (None for one value) and count of each value over a leaf's done trials."""

    leaf: str
    n: int
    stats: dict[str, tuple[float, float | None, int]] = field(default_factory=dict)


def collect(trials: list[Trial]) -> list[TrialResult]:
    return [TrialResult(t, t.record(), trial_values(t.dir)) for t in trials]


def summarize(results: list[TrialResult]) -> list[Summary]:
    """Per experiment leaf: mean ± std over its done trials that are still in the sweep."""
    by_leaf: dict[str, list[TrialResult]] = defaultdict(list)
    for result in results:
        if result.record.get("mode") == "experiment":
            by_leaf[result.record.get("leaf", "")].append(result)
    summaries = []
    for leaf, members in by_leaf.items():
        done = [r for r in members if r.status is Status.DONE and r.record.get("in_sweep", True)]
        summary = Summary(leaf, len(done))
        for column in sorted({c for r in done for c in r.values}):
            values = [r.values[column] for r in done if column in r.values]
            spread = statistics.stdev(values) if len(values) > 1 else None
            summary.stats[column] = (statistics.fmean(values), spread, len(values))
        summaries.append(summary)
    return summaries


def columns(results: list[TrialResult]) -> list[str]:
    """Value columns in a stable order: validation metrics (final, best), then test metrics."""
    names = {c for r in results for c in r.values}

    def order(column: str) -> tuple:
        base, _, last = column.rpartition("/")
        if column.startswith("test/"):
            return (1, column, 0)
        return (0, base, 0 if last == FINAL else 1)

    return sorted(names, key=order)


def mean_std(stat: tuple[float, float | None, int]) -> str:
    mean, spread, n = stat
    return f"{mean:.4g} ± {spread:.2g} (n={n})" if spread is not None else f"{mean:.4g} (n={n})"


def _summary_columns(summaries: list[Summary], value_columns: list[str]) -> list[str]:
    return sorted({c for s in summaries for c in s.stats}, key=value_columns.index)


def summary_table(summaries: list[Summary], value_columns: list[str]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the per-leaf table: mean ± std (n) of each value column."""
    names = _summary_columns(summaries, value_columns)
    rows = [[s.leaf, s.n, *(mean_std(s.stats[c]) if c in s.stats else "" for c in names)] for s in summaries]
    return ["leaf", "n", *names], rows


def _write_table(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue(), durable=False)


def write_csv(path: Path, found: list[TrialResult], summaries: list[Summary], value_columns: list[str]) -> Path | None:
    """Write the per-trial table to `path` and, when there are experiment leaves, the per-leaf mean/std/n table to
    `<stem>_summary.csv` beside it; returns the summary's path, or None when there is none."""
    axis_keys = list(dict.fromkeys(k for r in found for k in (r.record.get("axes") or {})))
    _write_table(
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
    if not summaries:
        return None
    summary_path = path.with_name(f"{path.stem}_summary{path.suffix or '.csv'}")
    names = _summary_columns(summaries, value_columns)
    header = ["leaf", "n"]
    for c in names:
        header += [f"{c}/mean", f"{c}/std", f"{c}/n"]
    body = []
    for s in summaries:
        row = [s.leaf, s.n]
        for c in names:
            mean, spread, n = s.stats.get(c, ("", "", 0))
            row += [mean, "" if spread is None else spread, n]
        body.append(row)
    _write_table(summary_path, header, body)
    return summary_path
