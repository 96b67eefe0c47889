"""What a run's loggers leave in its record: tracker run ids and URLs, final metrics; and CSV logs that continue."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from lighter.run.record import METRICS_FILE, write_atomic


def _wandb(logger: Any) -> dict[str, Any] | None:
    run = logger._experiment
    if run is None:
        return None
    return {"id": run.id, "name": run.name, "project": run.project, "url": run.url, "dir": run.dir}


def _mlflow(logger: Any) -> dict[str, Any] | None:
    if logger._run_id is None:
        return None
    uri = logger._tracking_uri
    found = {"run_id": logger._run_id, "experiment_id": logger._experiment_id, "tracking_uri": uri}
    if str(uri).startswith(("http://", "https://")):
        found["url"] = f"{str(uri).rstrip('/')}/#/experiments/{logger._experiment_id}/runs/{logger._run_id}"
    return found


def _comet(logger: Any) -> dict[str, Any] | None:
    experiment = getattr(logger, "_experiment", None)
    if experiment is None:
        return None
    return {"key": experiment.get_key(), "url": getattr(experiment, "url", None)}


def _folder(logger: Any) -> dict[str, Any] | None:
    return {"log_dir": str(Path(logger.log_dir).absolute())} if logger._version is not None else None


_READERS = {
    "WandbLogger": _wandb,
    "MLFlowLogger": _mlflow,
    "CometLogger": _comet,
    "CSVLogger": _folder,
    "TensorBoardLogger": _folder,
}


def tracker_runs(trainer: Any) -> list[dict[str, Any]]:
    """One entry per logger whose run has started: its kind plus its run id and URL (or folder)."""
    found = []
    for logger in trainer.loggers:
        kind = type(logger).__name__
        names = {c.__name__ for c in type(logger).__mro__}
        reader = next((r for name, r in _READERS.items() if name in names), None)
        try:
            details = reader(logger) if reader else {}
        except Exception as err:  # a record must never fail the run it records
            details = {"unreadable": f"{type(err).__name__}: {err}"}
        if details is not None:
            found.append({"logger": kind, **details})
    return found


def final_metrics(trainer: Any) -> dict[str, float]:
    """The last value of every scalar metric the stage logged (`trainer.callback_metrics`)."""
    found = {}
    for name, value in trainer.callback_metrics.items():
        try:
            found[name] = float(value)
        except (TypeError, ValueError, RuntimeError):
            continue
    return found


def continue_csv_log(trainer: Any, run_dir: Path, *, before_step: int) -> None:
    """Let a resumed run's CSV logger append to `metrics.csv` instead of deleting it.

    Rows logged after the checkpoint the run resumes from (steps >= `before_step`) are dropped: the resumed run
    logs those steps again. Lightning's writer deletes an existing `metrics.csv` when it starts, so the file steps
    aside while the writer starts, then comes back with the writer told its columns.
    """
    from pytorch_lightning.loggers import CSVLogger

    logger = next((lg for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)
    path = run_dir / METRICS_FILE
    if logger is None or Path(logger.log_dir) != run_dir or not path.is_file():
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = [row for row in reader if row.get("step", "") == "" or float(row["step"]) < before_step]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())
    aside = path.with_name(f".{METRICS_FILE}.{os.getpid()}.resume")
    os.replace(path, aside)
    try:
        logger.experiment.metrics_keys = header
    finally:
        os.replace(aside, path)
