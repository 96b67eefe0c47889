"""How a run shows its progress: a bar in a terminal, plain lines in a SLURM log or a pipe.

lighter picks one when `trainer::callbacks` names none (`default_progress`): the bar when stdout is a terminal,
`ProgressLog` when it is not. Name one to choose yourself:

```yaml
trainer:
  callbacks:
    - {_target_: lighter.callbacks.ProgressLog, every_s: 30}   # lines, also in a terminal
    - _target_: lighter.callbacks.ProgressBar                    # the bar, also in a log file
```

Both show short metric names (`val/accuracy` for `val/metrics/accuracy/epoch`) and the validation metrics, and
leave out `v_num` (the end-of-run summary names the run directory).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar as LightningProgressBar
from pytorch_lightning.callbacks import RichProgressBar as LightningRichProgressBar
from pytorch_lightning.callbacks import TQDMProgressBar

from lighter.utils.metric_names import format_metrics, is_headline, shorten


def _validation_metrics(trainer: pl.Trainer) -> dict[str, float]:
    return {k: v for k, v in shorten(trainer.callback_metrics).items() if k.startswith("val/") and is_headline(k)}


class _ShortNames:
    """Bar contents: what the module logs with `prog_bar=True` (the live loss) plus the last validation metrics.

    The validation metrics are read once per validation, not per step: the bar asks for its contents every batch.
    """

    _validation: dict[str, float]

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        return {**shorten(trainer.progress_bar_metrics, prefer="step"), **getattr(self, "_validation", {})}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._validation = _validation_metrics(trainer)
        super().on_validation_end(trainer, pl_module)  # type: ignore[misc]


class ProgressBar(_ShortNames, TQDMProgressBar):
    """Lightning's tqdm bar with short metric names and the validation metrics."""


class RichProgressBar(_ShortNames, LightningRichProgressBar):
    """Lightning's Rich bar with short metric names and the validation metrics, without `v_num: 0.000`."""


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class ProgressLog(LightningProgressBar):
    """Progress as plain lines on stdout: one per epoch, and one every `every_s` seconds inside a long epoch or loop.

    A line: `Epoch 3/7  1.2s  train/loss 0.213  train/accuracy 0.93  val/loss 0.088  val/accuracy 0.972`. Nothing
    is redrawn, so a SLURM log or `| tee` keeps a few lines per epoch instead of thousands of bar updates.
    """

    def __init__(self, every_s: float = 60.0):
        super().__init__()
        self.every_s = every_s
        self._enabled = True
        self._started = self._last = 0.0
        self._batches = 0

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def print(self, *args: Any, **kwargs: Any) -> None:
        print(*args, **kwargs, flush=True)

    def _write(self, head: str, metrics: dict[str, float]) -> None:
        if self._enabled:
            print(f"{head}  {format_metrics(metrics)}".rstrip(), file=sys.stdout, flush=True)

    def _epoch(self, trainer: pl.Trainer) -> str:
        last = trainer.max_epochs - 1 if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        return f"Epoch {trainer.current_epoch}" + (f"/{last}" if last is not None else "")

    def _start(self, *_: Any) -> None:
        self._started = self._last = time.monotonic()
        self._batches = 0

    def _tick(self, head: str, trainer: pl.Trainer, total: int | float) -> None:
        self._batches += 1
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            of = f"/{int(total)}" if total != float("inf") else ""
            metrics = shorten(trainer.progress_bar_metrics, prefer="step")
            self._write(f"{head}  batch {self._batches}{of}  {_duration(now - self._started)}", metrics)

    on_train_epoch_start = _start

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        self._tick(self._epoch(trainer), trainer, self.total_train_batches)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {k: v for k, v in shorten(trainer.callback_metrics).items() if is_headline(k)}
        self._write(f"{self._epoch(trainer)}  {self._elapsed()}", metrics)

    def _standalone(self, trainer: pl.Trainer) -> bool:
        """validate, test and predict on their own get lines; validation inside fit is in the epoch line."""
        return trainer.state.fn != "fit" and not trainer.sanity_checking

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._standalone(trainer):
            self._start()

    on_test_start = on_predict_start = on_validation_start

    def _eval_tick(self, trainer: pl.Trainer, name: str, totals: list[int | float], dataloader_idx: int) -> None:
        if self._standalone(trainer):
            self._tick(name, trainer, totals[dataloader_idx] if dataloader_idx < len(totals) else float("inf"))

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._eval_tick(trainer, "validate", trainer.num_val_batches, dataloader_idx)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._eval_tick(trainer, "test", trainer.num_test_batches, dataloader_idx)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._eval_tick(trainer, "predict", trainer.num_predict_batches, dataloader_idx)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._standalone(trainer):
            self._write(f"{trainer.state.fn.value}: {self._batches} batches in {self._elapsed()}", {})

    on_test_end = on_predict_end = on_validation_end

    def _elapsed(self) -> str:
        return _duration(time.monotonic() - self._started)


def default_progress() -> LightningProgressBar:
    """A bar in a terminal (Rich when installed, as Lightning chooses), lines anywhere else."""
    if not sys.stdout.isatty():
        return ProgressLog()
    return RichProgressBar() if importlib.util.find_spec("rich") is not None else ProgressBar()


def use_default_progress(trainer: pl.Trainer, configured: list[Any]) -> None:
    """Swap the bar Lightning added on its own for `default_progress()`; a bar the config names stays."""
    bar = trainer.progress_bar_callback
    if bar is None or any(callback is bar for callback in configured):
        return
    trainer.callbacks[trainer.callbacks.index(bar)] = default_progress()
