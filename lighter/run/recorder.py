"""The callback that ties a Trainer to its run directory: same directory on every rank, config and random states
in every checkpoint, and a whole checkpoint when a signal stops the fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from lighter.run import rng
from lighter.run.files import CHECKPOINT_KEY, CHECKPOINTS_DIR, RUN_DIR_KEY
from lighter.run.mid_epoch import RESUMABLE
from lighter.utils.step_hooks import quiet_per_batch

INTERRUPTED_CHECKPOINT = "interrupted.ckpt"
LOG_STEPS_KEY = "lighter_val_log_steps"  # Lightning's count of logged validation steps, which it does not save


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

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.world_size > 1:
            # Processes started by torchrun or SLURM did not see rank 0 choose: take its choice.
            chosen = trainer.strategy.broadcast(None if self.run_dir is None else str(self.run_dir))
            self.run_dir = None if chosen is None else Path(chosen)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint.setdefault("hyper_parameters", {})[CHECKPOINT_KEY] = self.config
        checkpoint[rng.KEY] = {"ranks": rng.gather(trainer)}
        if self.run_dir is not None:
            checkpoint[RUN_DIR_KEY] = str(self.run_dir)
        seen = _val_log_steps(trainer)
        if seen is not None:
            checkpoint[LOG_STEPS_KEY] = {int(k): int(v) for k, v in seen.items()}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if trainer.state.fn != "fit":
            return  # testing or predicting from a checkpoint continues no random stream
        ranks = checkpoint.get(rng.KEY, {}).get("ranks") or []
        if trainer.global_rank < len(ranks):
            rng.restore(ranks[trainer.global_rank])
        self._val_steps_to_restore = checkpoint.get(LOG_STEPS_KEY)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The loop resets its count when it first sets up its data, after the checkpoint was loaded: restore it here.
        seen = _val_log_steps(trainer)
        if self._val_steps_to_restore and not trainer.sanity_checking and seen is not None:
            seen.update(self._val_steps_to_restore)
            self._val_steps_to_restore = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning may have rebuilt the train loader (e.g. to add a DistributedSampler): tell the one it uses.
        import weakref

        combined = trainer.fit_loop._combined_loader
        for loader in combined.flattened if combined is not None else []:
            if getattr(loader, RESUMABLE, False):
                loader._lighter_trainer = weakref.ref(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit" or self.run_dir is None:
            return
        path = self.run_dir / CHECKPOINTS_DIR / INTERRUPTED_CHECKPOINT
        trainer.save_checkpoint(path, weights_only=False)  # the whole training state, to resume from
        self.interrupted_checkpoint = path
