"""Wall-clock marks taken inside a training process and written to JSON for the benchmark runner.

`TimingCallback` takes them in a Lightning run (lighter passes it through `trainer::callbacks`);
the plain loop calls `Timeline` itself at the same points.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytorch_lightning as pl
import torch


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class Timeline:
    """First-step time (epoch seconds, comparable with the launcher's clock) and per-epoch boundaries."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.first_step: float | None = None
        self.epoch_starts: list[tuple[float, float]] = []  # (wall, CPU) seconds
        self.end: tuple[float, float] | None = None
        self.finished_at: float | None = None  # epoch seconds, like first_step
        self.checksum: float | None = None
        self.final_loss: float | None = None

    def start(self, model: torch.nn.Module) -> None:
        # The sum of the initial weights: equal across the three ways only if they seed and build alike.
        with torch.no_grad():
            self.checksum = float(sum(p.double().sum() for p in model.parameters()))

    def epoch_start(self) -> None:
        self.epoch_starts.append(_now())

    def batch_start(self) -> None:
        if self.first_step is None:
            self.first_step = time.time()

    def finish(self, final_loss: float | None) -> None:
        self.end = _now()
        self.finished_at = time.time()
        self.final_loss = final_loss
        self.path.write_text(json.dumps(self.summary()))

    def summary(self) -> dict:
        bounds = [*self.epoch_starts, self.end]
        spans = list(zip(bounds, bounds[1:], strict=False))
        return {
            "first_step": self.first_step,
            "finished_at": self.finished_at,
            "epoch_seconds": [end[0] - start[0] for start, end in spans],
            # CPU time of the process: what other processes on a shared machine disturb least.
            "epoch_cpu_seconds": [end[1] - start[1] for start, end in spans],
            "checksum": self.checksum,
            "final_loss": self.final_loss,
        }


class TimingCallback(pl.Callback):
    """Writes a `Timeline` to `path` when training ends.

    ```yaml
    trainer:
      callbacks: [{_target_: project.timing.TimingCallback, path: timeline.json}]
    ```
    """

    def __init__(self, path: str, loss_key: str = "train/loss/epoch"):
        self.timeline = Timeline(path)
        self.loss_key = loss_key

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.timeline.start(pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.timeline.epoch_start()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx) -> None:
        self.timeline.batch_start()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = trainer.callback_metrics.get(self.loss_key)
        self.timeline.finish(None if loss is None else float(loss))
