"""`lighter resume RUN_DIR`: continue a recorded fit from its newest checkpoint, in its own directory.

The recorded config plus the overrides run again; `lighter.run.continuation` decides and records the resume, as it
does for SLURM requeue and sweep attempts.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from lighter.engine.stage import add_callbacks, command_line, execute, instantiate, override_words, prepare
from lighter.names import Status
from lighter.run.checkpoint_io import read_checkpoint
from lighter.run.continuation import Caller, decide, resume_from
from lighter.run.files import CONFIG_FILE


def _reached_end(checkpoint: dict[str, Any], trainer: Any) -> str | None:
    """Why a fit from `checkpoint` under `trainer`'s limits would train nothing, or None."""
    epochs = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    # A checkpoint saved at an epoch's end (ModelCheckpoint's usual moment) counts it as processed, not yet completed.
    done_epochs = max(int(epochs.get("completed", 0)), int(epochs.get("processed", 0)))
    steps = int(checkpoint.get("global_step", 0))
    if trainer.max_steps not in (None, -1) and steps >= trainer.max_steps:
        return f"it has trained {steps} steps, and trainer::max_steps is {trainer.max_steps}"
    if trainer.max_epochs not in (None, -1) and done_epochs >= trainer.max_epochs:
        return f"it has trained {done_epochs} epochs, and trainer::max_epochs is {trainer.max_epochs}"
    return None


def resume(
    run_dir: str | os.PathLike,
    overrides: list[str] | dict[str, Any] | None = None,
    *,
    profile: str | None = None,
    callbacks: list[Any] = (),
) -> Any:
    """Continue a recorded fit in its own directory; returns what `Trainer.fit` returns (None).

    `profile` (else `LIGHTER_PROFILE`) restores the values the recorded config holds as `<profile NAME>` markers.
    `callbacks` are callback objects the trainer gets besides the config's (a sweep's BatchLog).
    """
    decision = decide(run_dir, Caller.RESUME)
    folder, record = decision.run_dir, decision.record or {}
    words = override_words(overrides)
    command = command_line("resume", [str(run_dir)], words)
    experiment = instantiate(prepare("fit", [str(folder / CONFIG_FILE)], overrides, profile=profile, command=command))
    add_callbacks(experiment, list(callbacks))
    why_done = _reached_end(read_checkpoint(decision.newest), experiment.trainer)
    if why_done is None and record.get("status") == Status.FINISHED and not words:
        why_done = "it finished, and no override asks for more"
    if why_done is not None:
        print(
            f"lighter: the run {folder} has already reached its end: {why_done}. Nothing to train.\n"
            f"  To train longer: lighter resume {shlex.quote(str(folder))} trainer::max_epochs=N",
        )
        return None
    resume_from(experiment, decision, experiment.recorder)
    return execute(experiment, run_dir=folder, continuing=True)
