"""The callback that ties a Trainer to its run directory: same directory on every rank, config and random states
in every checkpoint, and a whole checkpoint when a signal stops the fit."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loops.progress import _BatchProgress
from pytorch_lightning.utilities.exceptions import SIGTERMException

from lighter.run import rng
from lighter.run.files import CHECKPOINT_KEY, CHECKPOINTS_DIR, LOG_STEPS_KEY, RUN_DIR_KEY
from lighter.run.mid_epoch import RESUMABLE, validation_start_rng, validation_unfinished
from lighter.utils.step_hooks import quiet_per_batch

INTERRUPTED_CHECKPOINT = "interrupted.ckpt"
# The training epoch's values (`train/loss/epoch`, ...) when a stop during validation came after the epoch's last
# step: Lightning keeps them only in memory and logs them after the validation, which the resumed fit runs again.
EPOCH_VALUES_KEY = "lighter_train_epoch_values"


def _val_log_steps(trainer: pl.Trainer) -> Any:
    """The validation loop's running count of logged batches: the `step` of `val/.../step` rows in metrics.csv.

    Lightning keeps it on the loop for the whole fit but leaves it out of checkpoints, so a resumed fit would number
    those rows from 0 again.
    """
    return getattr(trainer.fit_loop.epoch_loop.val_loop, "_seen_batches_per_dataloader", None)


@quiet_per_batch
class RunRecorder(pl.Callback):
    """Puts the config (plain data) and every rank's random states into each checkpoint, restores the states on
    resume, and saves `checkpoints/interrupted.ckpt` when SIGINT or SIGTERM stops a fit after a step."""

    def __init__(
        self, config: dict[str, Any], stage: str, command: str, seed: Any, source: Path, ckpt_path: Any = None
    ):
        self.config = config
        self.ckpt_path = ckpt_path
        self.stage = stage
        self.command = command
        self.seed = seed
        self.source = source
        self.run_dir: Path | None = None  # set by `lighter.run.lifecycle.start` before the stage starts
        self.interrupted_checkpoint: Path | None = None
        self._val_steps_to_restore: dict[int, int] | None = None
        self._val_steps_at_start: dict[int, int] | None = None
        self._epoch_values_to_log: dict[str, Any] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.world_size > 1:
            # Processes started by torchrun or SLURM did not see rank 0 choose: take its choice.
            chosen = trainer.strategy.broadcast(None if self.run_dir is None else str(self.run_dir))
            self.run_dir = None if chosen is None else Path(chosen)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint.setdefault("hyper_parameters", {})[CHECKPOINT_KEY] = self.config
        seen = _val_log_steps(trainer)
        if validation_unfinished(trainer):  # a stop during validation: the resumed fit validates again from its start
            checkpoint[rng.KEY] = {"ranks": rng.gather(trainer, validation_start_rng(trainer))}
            seen = self._val_steps_at_start
            _mark_validation_unstarted(checkpoint)
            epoch_loop = trainer.fit_loop.epoch_loop
            if epoch_loop.batch_progress.current.ready >= trainer.num_training_batches:
                checkpoint[EPOCH_VALUES_KEY] = _epoch_values(epoch_loop._results)
        else:
            checkpoint[rng.KEY] = {"ranks": rng.gather(trainer)}
        if self.run_dir is not None:
            checkpoint[RUN_DIR_KEY] = str(self.run_dir)
        if seen is not None:
            checkpoint[LOG_STEPS_KEY] = {int(k): int(v) for k, v in seen.items()}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if trainer.state.fn != "fit":
            return  # testing or predicting from a checkpoint continues no random stream
        ranks = checkpoint.get(rng.KEY, {}).get("ranks") or []
        if trainer.global_rank < len(ranks):
            rng.restore(ranks[trainer.global_rank])
        self._val_steps_to_restore = checkpoint.get(LOG_STEPS_KEY)
        self._epoch_values_to_log = checkpoint.get(EPOCH_VALUES_KEY)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The loop resets its count when it first sets up its data, after the checkpoint was loaded: restore it here.
        seen = _val_log_steps(trainer)
        if self._val_steps_to_restore and not trainer.sanity_checking and seen is not None:
            seen.update(self._val_steps_to_restore)
            self._val_steps_to_restore = None
        self._val_steps_at_start = None if seen is None else dict(seen)
        val_loop = trainer.fit_loop.epoch_loop.val_loop
        if trainer.state.fn == "fit" and val_loop.restarted_mid_evaluation:
            # Lightning rolled the unfinished step of the mark below back in this run's count, not in its total.
            val_loop.batch_progress.total.reset_on_restart()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_steps_at_start = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The epoch a stop during its validation cut short: log its values as the fit that ran its steps had them.
        values, self._epoch_values_to_log = self._epoch_values_to_log, None
        for name, (value, to_logger) in (values or {}).items():
            pl_module.log(name, value, on_step=False, on_epoch=True, logger=to_logger, batch_size=1)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning may have rebuilt the train loader (e.g. to add a DistributedSampler): tell the one it uses.
        combined = trainer.fit_loop._combined_loader
        for loader in combined.flattened if combined is not None else []:
            if getattr(loader, RESUMABLE, False):
                loader._lighter_trainer = weakref.ref(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit" or self.run_dir is None:
            return
        path = self.run_dir / CHECKPOINTS_DIR / INTERRUPTED_CHECKPOINT
        trainer.save_checkpoint(path, weights_only=False)  # the whole training state, to resume from
        self.interrupted_checkpoint = path


def _mark_validation_unstarted(checkpoint: dict) -> None:
    """Record the validation loop as a run whose first step started and did not finish: Lightning's mark of a
    checkpoint saved mid-evaluation, on which a resumed fit runs that validation again (what it logged so far is not
    in the checkpoint, so it cannot carry on from the batch it stopped after)."""
    unstarted = _BatchProgress()
    unstarted.increment_ready()
    unstarted.increment_started()
    checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"] = unstarted.state_dict()


def _epoch_values(results: Any) -> dict[str, tuple[Any, bool]]:
    """The epoch-level values a training epoch logged so far: {name: (value, whether loggers get it)}."""
    metrics = results.metrics(on_step=False)
    return {name: (value, name in metrics["log"]) for name, value in metrics["callback"].items()}
