"""The callback that ties a Trainer to its run directory: same directory on every rank, config in checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from lighter.run.record import CHECKPOINT_KEY


class RunRecorder(pl.Callback):
    """Puts the config into every checkpoint (as plain data) and gives every rank rank 0's run directory."""

    def __init__(
        self, config: dict[str, Any], stage: str, command: str, seed: Any, source: Path, ckpt_path: Any = None
    ):
        self.config = config
        self.ckpt_path = ckpt_path
        self.stage = stage
        self.command = command
        self.seed = seed
        self.source = source
        self.run_dir: Path | None = None  # set by `lighter.run.lifecycle.recorded` before the stage starts

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.world_size > 1:
            # Processes started by torchrun or SLURM did not see rank 0 choose: take its choice.
            chosen = trainer.strategy.broadcast(None if self.run_dir is None else str(self.run_dir))
            self.run_dir = None if chosen is None else Path(chosen)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint.setdefault("hyper_parameters", {})[CHECKPOINT_KEY] = self.config
