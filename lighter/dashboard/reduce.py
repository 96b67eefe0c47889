"""Epoch reductions: a per-batch table to one row per (epoch, mode). Pure functions of pandas tables, no files.

A batch log has the columns `epoch, mode, batch, step, loss`, one column per metric, `lr`, `grad_norm`, `time`.
Each column reduces by its kind (`REDUCTIONS`); every other numeric column is averaged, unweighted, across the
epoch's batches. Absent columns stay absent and non-numeric ones are dropped.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from lighter.names import Mode

KEYS = ("epoch", "mode")
N_BATCHES = "n_batches"  # how many batches an epoch row summarises, kept for diagnostics
DROPPED = ("batch",)  # a batch index averages to nothing useful
X_COLUMNS = ("step", "time")  # what a plot can put on its x axis besides the epoch

# Column -> reduction within an epoch; a column not listed is a metric and gets the mean.
REDUCTIONS: dict[str, str] = {
    "lr": "last",
    "iter_budget": "last",
    "step": "last",  # the global step the epoch ended on
    "grad_norm": "median",  # one exploding batch should not hide the epoch's typical norm
    "error_min": "median",
    "error_med": "median",
    "error_max": "median",
    "iter_min": "median",
    "iter_med": "median",
    "iter_max": "median",
    "time": "max",  # seconds since fit started, at the epoch's end
}
MODE_ORDER = {mode.value: i for i, mode in enumerate(Mode)}


class LogError(ValueError):
    """A table that cannot be reduced: says which column is missing."""


def epoch_table(batches: pd.DataFrame) -> pd.DataFrame:
    """One row per (epoch, mode) of a batch log, columns in the batch log's order, then `n_batches`."""
    missing = [key for key in KEYS if key not in batches.columns]
    if missing:
        raise LogError(f"no {' or '.join(repr(m) for m in missing)} column; a batch log has {', '.join(KEYS)}")
    if batches[list(KEYS)].isna().any(axis=None):
        batches = batches.dropna(subset=list(KEYS))
    values = [
        col
        for col in batches.columns
        if col not in KEYS and col not in DROPPED and pd.api.types.is_numeric_dtype(batches[col])
    ]
    groups = batches.groupby(list(KEYS), sort=False)
    by_kind: dict[str, list[str]] = {}
    for col in values:
        by_kind.setdefault(REDUCTIONS.get(col, "mean"), []).append(col)
    parts = [getattr(groups[cols], kind)() for kind, cols in by_kind.items()]
    parts.append(groups.size().rename(N_BATCHES))
    table = pd.concat(parts, axis=1)[[*values, N_BATCHES]].reset_index()
    return _sorted(table)


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    """Epoch by epoch, train before val before test, other modes after them by name."""
    order = table["mode"].map(lambda m: (MODE_ORDER.get(m, len(MODE_ORDER)), str(m)))
    table = table.assign(_order=order).sort_values(["epoch", "_order"], kind="stable").drop(columns="_order")
    table["epoch"] = table["epoch"].astype("int64")
    return table.reset_index(drop=True)


# Lightning's CSVLogger: `{mode}/loss/epoch`, `{mode}/metrics/{name}/epoch` (Lighter 0.0.4 names) or `val/loss`,
# `train/loss_step`, `val/metrics/{name}`; a LearningRateMonitor logs `lr-Adam`. Anything else is taken as is.
_SUFFIX = re.compile(r"(?:/|_)(epoch|step)$")
_MODES = tuple(mode.value for mode in Mode)


def lightning_column(name: str) -> tuple[str, str, str]:
    """`val/metrics/acc/epoch` -> ("val", "acc", "epoch"): mode, metric name and when it was logged."""
    match = _SUFFIX.search(name)
    when = match.group(1) if match else ""
    base = name[: match.start()] if match else name
    mode, _, rest = base.partition("/")
    if mode not in _MODES or not rest:
        mode, rest = Mode.TRAIN.value, base  # lr-Adam, a user's own `self.log("foo")`: shown with train
    if rest.startswith("metrics/"):
        rest = rest[len("metrics/") :]
    if rest.startswith("lr-") or rest.rsplit("/", 1)[-1] == "lr":
        rest = "lr"  # LearningRateMonitor's `lr-Adam`, lighter's `train/optimizer/Adam/lr`
    return mode, rest, when


def lightning_epoch_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (epoch, mode) of a Lightning CSVLogger `metrics.csv`.

    Epoch-level values are taken as logged; a metric logged only per step is reduced as a batch log's would be.
    """
    if "epoch" not in metrics.columns:
        raise LogError("no 'epoch' column; a Lightning metrics.csv has epoch and step")
    metrics = metrics.dropna(subset=["epoch"])
    chosen: dict[tuple[str, str], tuple[str, str]] = {}  # (mode, name) -> (column, when), epoch-level preferred
    for col in metrics.columns:
        if col in ("epoch", "step") or not pd.api.types.is_numeric_dtype(metrics[col]):
            continue
        mode, name, when = lightning_column(col)
        if (mode, name) not in chosen or (when == "epoch" and chosen[(mode, name)][1] != "epoch"):
            chosen[(mode, name)] = (col, when)
    steps = ["step"] if "step" in metrics.columns else []
    tables = []
    for mode in dict.fromkeys(mode for mode, _ in chosen):
        columns = {name: col for (m, name), (col, _) in chosen.items() if m == mode}
        part = metrics[["epoch", *steps, *columns.values()]].rename(columns={c: n for n, c in columns.items()})
        part = part.dropna(how="all", subset=list(columns))
        if part.empty:
            continue
        groups = part.groupby("epoch", sort=True)
        reduced = {}
        for name in columns:
            kind = "last" if chosen[(mode, name)][1] == "epoch" else REDUCTIONS.get(name, "mean")
            reduced[name] = getattr(groups[name], kind)()
        if steps:
            reduced["step"] = groups["step"].max()
        table = pd.DataFrame(reduced).reset_index()
        table.insert(1, "mode", mode)
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=list(KEYS))
    return _sorted(pd.concat(tables, ignore_index=True))


# What a run reached, per (mode, metric): Lightning's logged epoch values (weighted by batch size, as `sweep results`
# and run.yaml report them) wherever the run logged them, else the epoch table's unweighted batch means.
LOGGED = "Lightning's epoch value"
BATCH_MEAN = "mean of batches"


def reached(epochs: pd.DataFrame, metrics: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """`{"val/accuracy": {"final", "min", "max", "epochs", "source"}}` from an epoch table and a `metrics.csv`."""
    found: dict[str, dict[str, Any]] = {}

    def add(mode: str, name: str, values: pd.Series, source: str) -> None:
        values = pd.to_numeric(values, errors="coerce").dropna()
        if len(values):
            found[f"{mode}/{name}"] = dict(final=float(values.iloc[-1]), min=float(values.min()),
                                           max=float(values.max()), epochs=len(values), source=source)  # fmt: skip

    for mode, part in epochs.groupby("mode", sort=False) if "mode" in epochs.columns else ():
        part = part.sort_values("epoch", kind="stable")
        for col in part.columns:
            if col not in (*KEYS, *DROPPED, *X_COLUMNS, N_BATCHES):
                add(str(mode), col, part[col], BATCH_MEAN)
    if metrics is not None and "epoch" in metrics.columns:
        for col in metrics.columns:
            mode, name, when = lightning_column(col)
            if col in ("epoch", "step") or when == "step" or not pd.api.types.is_numeric_dtype(metrics[col]):
                continue
            per_epoch = metrics[["epoch", col]].dropna().groupby("epoch", sort=True)[col].last()
            add(mode, name, per_epoch, LOGGED)
    return found
