"""`BatchLog`: one CSV row per batch of train, val and test, written into the run's directory."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torchmetrics import Metric, MetricCollection

from lighter.names import BATCH_LOG_FILE
from lighter.utils.log import get_logger

log = get_logger(__name__)

FILE_NAME = BATCH_LOG_FILE
MODES = ("train", "val", "test")
FIXED_HEAD = ("epoch", "mode", "batch", "step", "loss")
FIXED_TAIL = ("lr", "grad_norm", "time")


def _metrics(pl_module: pl.LightningModule, mode: str) -> list[tuple[str, Metric]]:
    """(short name, metric) of a mode: the System registers each mode's MetricCollection as `<mode>_metrics`."""
    collection = getattr(pl_module, f"{mode}_metrics", None)
    if not isinstance(collection, MetricCollection):
        return []
    return [(name, metric) for name, metric in collection.items(keep_base=True)]


def _column(name: str) -> str:
    """A metric's column: its short name, unless a fixed column has it."""
    return f"metric_{name}" if name in FIXED_HEAD + FIXED_TAIL else name


def _grad_norm(optimizer: Any) -> torch.Tensor | None:
    """Total L2 norm of the gradients the optimizer is about to apply, as a tensor (no sync with the device)."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return None
    try:
        # One fused kernel per device; a third of get_total_norm's time on small models, which first groups.
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    except (AttributeError, RuntimeError):  # gradients on several devices or in several dtypes
        return torch.nn.utils.get_total_norm(grads, 2.0)


class BatchLog(pl.Callback):
    """Writes `batch_log.csv`: per batch of train, val and test, its loss, metrics, learning rate and grad norm.

    ```yaml
    trainer:
      callbacks:
        - _target_: lighter.callbacks.BatchLog   # into the run's directory; `path: some/file.csv` to choose
    ```

    Columns: `epoch, mode, batch, step, loss`, one per metric (its value on that batch, under its short name),
    `lr` and `grad_norm` (train rows: the first param group's learning rate, and the total L2 norm of the
    gradients before clipping, on rows whose batch stepped the optimizer), `time` (seconds since the fit
    started). `step` is the number of optimizer steps taken before the row's batch, as Lightning's loggers count.
    Values stay on the device until a flush, which happens at every epoch end, at the end of the run, and
    otherwise every `flush_seconds`: no per-step synchronisation. Only rank 0 writes.

    A resumed fit appends. Rows of the interrupted attempt that the resumed fit will redo (past its checkpoint)
    are dropped from the log; the file as it was is first kept as `batch_log.1.csv` (then `.2`, ...).
    """

    def __init__(self, path: str | os.PathLike | None = None, flush_seconds: float = 10.0):
        super().__init__()
        if isinstance(flush_seconds, bool) or not isinstance(flush_seconds, (int, float)) or flush_seconds < 0:
            raise ValueError(f"BatchLog flush_seconds must be a number of seconds >= 0, got {flush_seconds!r}")
        self.path = Path(path) if path is not None else None
        self.flush_seconds = flush_seconds
        self._file: Path | None = None
        self._columns: list[str] = []
        self._rows: list[list[Any]] = []
        self._active = False
        self._start = 0.0
        self._last_flush = 0.0
        self._time_offset = 0.0
        self._resume_point: tuple[int, int] | None = None  # (epoch, step) a fit starts from
        # Per mode: (column, metric) pairs. Built once, in setup.
        self._mode_metrics: dict[str, list[tuple[int, Metric]]] = {}
        self._loss_scale = 1.0
        self._pending_norms: list[torch.Tensor] = []
        self._train_step = 0

    # ---- set up once -------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._active = trainer.is_global_zero
        if not self._active:
            return
        per_mode = {mode: [(_column(name), metric) for name, metric in _metrics(pl_module, mode)] for mode in MODES}
        names = list(dict.fromkeys(column for pairs in per_mode.values() for column, _ in pairs))
        self._columns = [*FIXED_HEAD, *names, *FIXED_TAIL]
        # Each mode's metrics fill their own columns; a column they lack stays empty.
        index = {column: i for i, column in enumerate(self._columns)}
        self._mode_metrics = {mode: [(index[c], metric) for c, metric in pairs] for mode, pairs in per_mode.items()}
        # Lightning hands on_train_batch_end the loss divided by the accumulation factor; undo that per row.
        self._loss_scale = float(trainer.accumulate_grad_batches) if pl_module.automatic_optimization else 1.0
        self._start = self._last_flush = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the checkpoint (if any) was restored: where this fit starts.
        self._resume_point = (trainer.current_epoch, trainer.global_step)

    # ---- per batch: append, nothing else -----------------------------------------------------------------
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int):
        self._train_step = trainer.global_step

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        if self._active:
            norm = _grad_norm(optimizer)
            if norm is not None:
                self._pending_norms.append(norm)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._active:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and self._loss_scale != 1.0:
            loss = loss * self._loss_scale
        norms, self._pending_norms = self._pending_norms, []
        norm = norms[0] if len(norms) == 1 else (torch.linalg.vector_norm(torch.stack(norms)) if norms else None)
        optimizers = trainer.optimizers
        lr = optimizers[0].param_groups[0]["lr"] if optimizers else None
        self._add(trainer, "train", batch_idx, self._train_step, loss, lr, norm)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._active and not trainer.sanity_checking:
            self._add(trainer, "val", batch_idx, trainer.global_step, _loss(outputs), None, None)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._active:
            self._add(trainer, "test", batch_idx, trainer.global_step, _loss(outputs), None, None)

    def _add(self, trainer: pl.Trainer, mode: str, batch_idx: int, step: int, loss: Any, lr: Any, norm: Any) -> None:
        now = time.perf_counter()
        row: list[Any] = [None] * len(self._columns)
        row[:5] = trainer.current_epoch, mode, batch_idx, step, loss
        for slot, metric in self._mode_metrics[mode]:
            # What the metric's forward returned for this batch (Lightning logs the same cache per step).
            row[slot] = metric._forward_cache
        row[-3:] = lr, norm, now - self._start
        self._rows.append(row)
        if now - self._last_flush > self.flush_seconds:
            self.flush(trainer)

    # ---- flush: at epoch ends, the end, errors ---------------------------------------------------------------
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flush(trainer)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flush(trainer)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flush(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.flush(trainer)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.flush(trainer)

    def flush(self, trainer: pl.Trainer) -> None:
        """Convert the buffered rows (one device transfer) and append them to the file."""
        self._last_flush = time.perf_counter()
        if not self._active or not self._rows:
            return
        rows, self._rows = self._rows, []
        path = self._prepare(trainer)
        _to_python(rows)
        new = not path.exists() or path.stat().st_size == 0
        with path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(self._columns)
            offset = self._time_offset
            for row in rows:
                row[-1] = round(row[-1] + offset, 4)
            writer.writerows(rows)

    # ---- where, and what a previous attempt left ------------------------------------------------------------
    def file(self, trainer: pl.Trainer) -> Path:
        """The CSV path: `path` (a file, or a folder to hold batch_log.csv), else the run's directory."""
        if self.path is not None:
            return self.path if self.path.suffix == ".csv" else self.path / FILE_NAME
        for callback in trainer.callbacks:
            run_dir = getattr(callback, "run_dir", None)
            if run_dir is not None:
                return Path(run_dir) / FILE_NAME
        if trainer.log_dir is not None:
            return Path(trainer.log_dir) / FILE_NAME
        return Path(trainer.default_root_dir) / FILE_NAME

    def _prepare(self, trainer: pl.Trainer) -> Path:
        if self._file is not None:
            return self._file
        self._file = path = self.file(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.stat().st_size == 0:
            return path
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            old = list(reader)
        kept = [row for row in old if self._keeps(row)]
        if kept:
            self._time_offset = max(_float(row.get("time")) for row in kept)
        if len(kept) == len(old) and header == self._columns:
            return path  # nothing to redo: append
        aside = _free_name(path)
        os.replace(path, aside)
        log.info(f"BatchLog: {path.name} kept as {aside.name}; the rows this run redoes are left out of the new log")
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, self._columns, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, path)
        return path

    def _keeps(self, row: dict[str, str]) -> bool:
        """Whether a row of an earlier attempt stays: it happened before the point this fit starts from."""
        if self._resume_point is None or row.get("mode") == "test":
            return True  # not a fit (test, validate): every earlier row stays
        epoch, step = self._resume_point
        if row.get("mode") == "train":
            return _float(row.get("step")) < step
        return _float(row.get("epoch")) < epoch or _float(row.get("step")) < step


def _loss(outputs: Any) -> Any:
    if isinstance(outputs, dict):
        return outputs.get("loss")
    return outputs if isinstance(outputs, torch.Tensor) else None


def _float(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def _free_name(path: Path) -> Path:
    n = 1
    while (candidate := path.with_name(f"{path.stem}.{n}{path.suffix}")).exists():
        n += 1
    return candidate


def _to_python(rows: Sequence[list[Any]]) -> None:
    """Replace every tensor cell by its number, in place, with one stack and one transfer per device."""
    cells: dict[torch.device, list[tuple[list[Any], int, torch.Tensor]]] = {}
    for row in rows:
        for i, value in enumerate(row):
            if isinstance(value, torch.Tensor):
                if value.numel() == 1:
                    cells.setdefault(value.device, []).append((row, i, value))
                else:
                    row[i] = None  # a metric without a single value per batch (a curve, a per-class vector)
            elif value is not None and not isinstance(value, (int, float, str)):
                row[i] = None
    for found in cells.values():
        values = torch.stack([t.detach().reshape(()).float() for _, _, t in found]).tolist()
        for (row, i, _), value in zip(found, values, strict=True):
            row[i] = value
