"""What a run's loggers leave behind: its final metrics for the record, and CSV and TensorBoard logs that continue
after a resume."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

from lighter.run.files import METRICS_FILE, write_atomic


def final_metrics(trainer: Any) -> dict[str, float]:
    """The last value of every scalar metric the stage logged (`trainer.callback_metrics`)."""
    found = {}
    for name, value in trainer.callback_metrics.items():
        try:
            found[name] = float(value)
        except (TypeError, ValueError, RuntimeError):
            continue
    return found


def continue_csv_log(trainer: Any, run_dir: Path, *, before_step: int, before_val_steps: dict[int, int]) -> None:
    """Let a resumed run's CSV logger append to `metrics.csv` instead of deleting it.

    Rows logged after the checkpoint the run resumes from are dropped: the resumed run logs them again. Those are
    rows at steps >= `before_step`, and validation-step rows numbered from `before_val_steps` on (Lightning numbers
    them by its count of validated batches per loader, and gives them no `epoch`). Lightning's writer deletes an
    existing `metrics.csv` when it starts, so the file steps aside while the writer starts, then comes back with the
    writer told its columns.
    """
    from pytorch_lightning.loggers import CSVLogger  # lazy: Lightning, not for show/status

    logger = next((lg for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)
    path = run_dir / METRICS_FILE
    if logger is None or Path(logger.log_dir) != run_dir or not path.is_file():
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = [row for row in reader if _before(row, before_step, before_val_steps)]
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


def _before(row: dict[str, str], step: int, val_steps: dict[int, int]) -> bool:
    if row.get("step", "") == "":
        return True
    if row.get("epoch", "") != "" or not val_steps:  # no count: a checkpoint from before lighter saved it
        return float(row["step"]) < step
    loader = next((int(k.rsplit("_", 1)[1]) for k, v in row.items() if v and _DATALOADER in k), 0)
    return float(row["step"]) < val_steps.get(loader, 0)


_DATALOADER = "/dataloader_idx_"  # Lightning's suffix on a value of the second and later validation loaders


def continue_tensorboard_log(trainer: Any, run_dir: Path, *, before_step: int) -> None:
    """Let a resumed run's TensorBoard logger continue the event files in `run_dir` without a step twice.

    Events at steps >= `before_step` were logged after the checkpoint the run resumes from, and the resumed run logs
    them again: TensorBoard's own `purge_step` makes its readers drop them. The hyperparameters (and Lightning's
    `hp_metric` placeholder) were logged at step 0 by the run it continues, so they are not logged again.
    """
    from pytorch_lightning.loggers import TensorBoardLogger  # lazy: `lighter --help` imports no Lightning

    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger) and Path(logger.log_dir) == run_dir:
            logger._kwargs["purge_step"] = before_step  # passed to its SummaryWriter, made on first use
            _after_existing_events(run_dir)
            logger._default_hp_metric = False  # without metrics, log_hyperparams then writes no event


def _after_existing_events(run_dir: Path) -> None:
    """TensorBoard reads a folder's event files in name order, and a name starts with the second its file was made
    (then host and pid): a resume within the same second as the run it continues could sort first, and its purge
    would then come before the events it purges. Wait for the next second; a file dated further ahead (another
    clock) is not waited for."""
    fields = [p.name.split(".") for p in run_dir.glob("events.out.tfevents.*")]
    seconds = [int(f[3]) for f in fields if len(f) > 3 and f[3].isdigit()]
    wait = max(seconds, default=0) + 1 - time.time()
    if 0 < wait <= 1:
        time.sleep(wait)
