"""The callback that hands a run's masked config to its loggers, and notes where each tracker keeps the run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from lighter.names import CONFIG_FILE
from lighter.run.files import dump, update_record
from lighter.tracking import loggers
from lighter.tracking.hparams import flatten
from lighter.utils.step_hooks import quiet_per_batch


@quiet_per_batch
class TrackerHandOff(pl.Callback):
    """At setup: the config, secrets already masked, as flat hyperparameters to every logger, plus `config.yaml`
    where the tracker keeps files; run.yaml's `trackers` then says where each tracker keeps the run."""

    def __init__(self, config: dict[str, Any], recorder: Any = None):
        self.config = config
        self.recorder = recorder  # the RunRecorder that holds the run's directory (None: record nothing)
        self.trackers: list[dict[str, Any]] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.trackers is not None or not trainer.loggers:
            return
        params = flatten(self.config)
        for logger in trainer.loggers:
            logger.log_hyperparams(params)  # rank zero only, in every Lightning logger
        if not trainer.is_global_zero:
            return
        with tempfile.TemporaryDirectory(prefix="lighter-") as folder:
            path = Path(folder) / CONFIG_FILE
            path.write_text(dump(self.config))
            for logger in trainer.loggers:
                loggers.attach(logger, path)  # each tracker copies the file into its own store
        self.trackers = [loggers.record(logger) for logger in trainer.loggers]
        if self.recorder is not None and self.recorder.run_dir is not None:
            update_record(self.recorder.run_dir, trackers=self.trackers)
