"""A recorded run as the input of a command: `lighter resume RUN_DIR` and `lighter test|validate|predict RUN_DIR`.

- `resume(run_dir, overrides)` continues the fit from its newest checkpoint, with its recorded config plus the
  overrides, in the same directory; `run.yaml` gets an entry under `resumes` for each (`lighter.run.continuation`
  decides and records it, as for SLURM requeue and sweep attempts).
- `stage_inputs(stage, run_dir)` is the recorded config and the checkpoint a test, validate or predict uses: the
  best one its ModelCheckpoint tracked, else `last.ckpt`, else the newest.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from lighter.errors import ConfigError
from lighter.run.checkpoint import read_checkpoint
from lighter.run.continuation import (
    RUN_DIR_HINT,
    Caller,
    checkpoints,
    decide,
    newest_checkpoint,
    resume_from,
)
from lighter.run.files import CONFIG_FILE, read_record

LAST = "last.ckpt"


def recorded_run(run_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """The run directory (absolute) and its record; ConfigError naming what is missing if it is not a run."""
    folder = Path(run_dir).absolute()
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a run directory: it does not exist", suggestion=RUN_DIR_HINT)
    record = read_record(folder)
    if record is None:
        raise ConfigError(f"{folder} is not a run directory: it holds no run.yaml", suggestion=RUN_DIR_HINT)
    if not (folder / CONFIG_FILE).is_file():
        raise ConfigError(
            f"the run directory {folder} has no {CONFIG_FILE}, so its config is unknown",
            suggestion=f"Restore {CONFIG_FILE} there, or run a config file instead of the directory.",
        )
    return folder, record


def best_checkpoint(run_dir: Path, record: dict[str, Any]) -> Path:
    """The best checkpoint a ModelCheckpoint with a `monitor` tracked, else `last.ckpt`, else the newest."""
    newest = newest_checkpoint(run_dir, record, purpose="use")
    for state in (read_checkpoint(newest).get("callbacks") or {}).values():
        # Without a `monitor`, Lightning's "best" is merely the latest top-k file: no best at all.
        best = state.get("best_model_path") if isinstance(state, dict) and state.get("monitor") else None
        if best and Path(best).is_file():
            return Path(best)
    lasts = [p for p in checkpoints(run_dir, record, warn=False) if p.name == LAST]
    return lasts[0] if lasts else newest


def stage_inputs(stage: str, run_dir: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(run directory, its config file, the checkpoint `stage` uses) for `lighter <stage> RUN_DIR`."""
    if stage == "fit":
        folder = Path(run_dir).absolute()
        again = (
            f"continue that run with `lighter resume {folder}`, or start it anew with "
            f"`lighter fit {folder / CONFIG_FILE}`"
            if read_record(folder) is not None
            else "name the YAML file(s) inside it"
        )
        raise ConfigError(
            f"`lighter fit` takes config files; {folder} is a directory", suggestion=again[0].upper() + again[1:] + "."
        )
    folder, record = recorded_run(run_dir)
    return folder, folder / CONFIG_FILE, best_checkpoint(folder, record)


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
    from lighter.engine.stage import add_callbacks, execute, instantiate, prepare
    from lighter.run.lifecycle import recorder_of

    decision = decide(run_dir, Caller.RESUME)
    folder, record = decision.run_dir, decision.record or {}
    words = [f"{k}={v}" for k, v in overrides.items()] if isinstance(overrides, dict) else list(overrides or [])
    experiment = prepare("fit", [str(folder / CONFIG_FILE)], overrides, profile=profile)
    experiment.command = shlex.join(["lighter", "resume", str(run_dir), *words])
    experiment = instantiate(experiment)
    add_callbacks(experiment, list(callbacks))
    why_done = _reached_end(read_checkpoint(decision.newest), experiment.trainer)
    if why_done is None and record.get("status") == "finished" and not words:
        why_done = "it finished, and no override asks for more"
    if why_done is not None:
        print(
            f"lighter: the run {folder} has already reached its end: {why_done}. Nothing to train.\n"
            f"  To train longer: lighter resume {shlex.quote(str(folder))} trainer::max_epochs=N",
        )
        return None
    resume_from(experiment, decision, recorder_of(experiment.trainer))
    return execute(experiment, run_dir=folder, continuing=True)
