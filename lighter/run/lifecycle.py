"""A run's life in its directory: claimed before the stage starts, recorded as it ends.

`run.yaml` says `status: running` while the stage runs, then `finished`, `failed` (with `error: {type, message}`) or
`interrupted` (with `interrupted: {signal, epoch, step}`), and `ended`. The process exits 0, 1, 2 (a config error),
130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighter.errors import ConfigError
from lighter.names import Status
from lighter.run import folder_claims
from lighter.run.checkpoint_io import read_checkpoint, use_atomic_writes
from lighter.run.continuation import Caller, Continuation, decide, resume_from
from lighter.run.directory import RUN_DIR_ENV, claim_run_dir, log_into, versioned_logger
from lighter.run.files import (
    CHECKPOINT_CONFIG_FILE,
    CHECKPOINT_KEY,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    LOG_STEPS_KEY,
    dump,
    git_state,
    now,
    process_rank,
    slurm_job,
    update_record,
    versions,
    write_atomic,
)
from lighter.run.logs import continue_csv_log, continue_tensorboard_log, final_metrics
from lighter.run.signals import GracefulStop
from lighter.run.slurm import candidate_dirs, is_restart, requeued_run
from lighter.run.status import this_process

EXIT_CODES = {"finished": 0, "failed": 1, "config_error": 2, "SIGINT": 130, "SIGTERM": 143}


def recorder_of(trainer: Any) -> Any:
    """The trainer's RunRecorder, for a callback the config builds (a searched trial's pruning), which nothing hands
    it to; lighter's own code takes `Experiment.recorder`."""
    from lighter.run.recorder import RunRecorder  # lazy: Lightning, not for show/status

    return next((cb for cb in trainer.callbacks if isinstance(cb, RunRecorder)), None)


def _first_record(recorder: Any) -> dict[str, Any]:
    return {
        "status": Status.RUNNING.value,
        "stage": recorder.stage,
        "command": recorder.command,
        "started": now(),
        "ended": None,
        "cwd": str(Path.cwd()),
        "project": recorder.config.get("project"),  # the absolute folder imported as `project`
        **this_process(),
        "seed": recorder.seed,
        "slurm": slurm_job(),
        "versions": versions(),
        "git": git_state(recorder.source),
    }


def _point_outputs_at(trainer: Any, run_dir: Path) -> list[str]:
    """Checkpoints without a `dirpath` go to `<run dir>/checkpoints`; Lightning's HPC checkpoints to the run dir.

    Returns every folder the run's checkpoints go to.
    """
    from pytorch_lightning.callbacks import ModelCheckpoint  # lazy: Lightning, not for show/status

    folders = []
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint):
            if callback.dirpath is None:
                callback.dirpath = str(run_dir / CHECKPOINTS_DIR)
            folders.append(str(Path(callback.dirpath).absolute()))
    trainer._default_root_dir = str(run_dir)
    return list(dict.fromkeys(folders))


def _trained_with(ckpt_path: Any) -> dict[str, Any] | None:
    """The config stored in the checkpoint a stage starts from, if it carries one."""
    if not isinstance(ckpt_path, str) or not Path(ckpt_path).is_file():
        return None
    return read_checkpoint(ckpt_path).get("hyper_parameters", {}).get(CHECKPOINT_KEY)


def start(experiment: Any, run_dir: str | os.PathLike | None = None, *, continuing: bool = False) -> Path | None:
    """Claim the run's directory and write `config.yaml` and `run.yaml` (rank 0), or learn it (other ranks).

    With `continuing`, `run_dir` is a recorded run that `lighter resume` continues: nothing is claimed, and its logs
    carry on. None when the run keeps no directory: `fast_dev_run`, or a Trainer built without recording.
    """
    trainer, recorder = experiment.trainer, experiment.recorder
    if recorder is None or trainer.fast_dev_run:
        return None
    # The CSV logger warns that it will delete earlier logs in a folder that isn't empty, ModelCheckpoint that its
    # folder isn't empty: this directory holds only this run's own files, and a resume puts earlier rows back itself.
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    if continuing:
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # A fit's checkpoint folders outside its run directory: refused before anything is written if another run's.
    outside = folder_claims.configured(trainer, experiment.components) if recorder.stage == "fit" else []
    if process_rank() == 0:
        if not continuing and is_restart():
            previous = _requeued(experiment, recorder, run_dir)
            if previous is not None:
                run_dir, continuing = previous, True
        for key, folder in outside:
            where = experiment.loaded.where(f"{key}::dirpath")
            folder_claims.check_free(folder, _absolute(run_dir), key=key, location=where)
        if continuing:
            directory = Path(run_dir).absolute()
            log_into(trainer, directory)
            logged_before = _logged_before(recorder.ckpt_path)
            continue_csv_log(trainer, directory, **logged_before)
            continue_tensorboard_log(trainer, directory, before_step=logged_before["before_step"])
        else:
            record = _first_record(recorder)
            trained_with = _trained_with(recorder.ckpt_path)
            if trained_with is not None:
                record["checkpoint"] = str(Path(recorder.ckpt_path).resolve())
            directory = claim_run_dir(trainer, recorder.stage, record, named=run_dir)
            write_atomic(directory / CONFIG_FILE, dump(experiment.secrets.mask(experiment.config)))
            if trained_with is not None:
                write_atomic(directory / CHECKPOINT_CONFIG_FILE, dump(experiment.secrets.mask_foreign(trained_with)))
        os.environ[RUN_DIR_ENV] = str(directory)  # DDP processes Lightning starts inherit it
    else:
        named = os.environ.get(RUN_DIR_ENV)
        directory = None if named is None else Path(named)
    recorder.run_dir = directory
    if directory is not None:
        folders = _point_outputs_at(trainer, directory)
        if process_rank() == 0 and folders and folders != [str(directory / CHECKPOINTS_DIR)]:
            update_record(directory, checkpoint_dirs=folders)
        if process_rank() == 0:
            _claim_folders(directory, outside)
    use_atomic_writes(trainer)
    loaders = getattr(experiment.system, "dataloaders", None)
    if recorder.stage == "fit" and isinstance(loaders, dict) and "train" in loaders:
        from lighter.run.mid_epoch import make_resumable  # lazy: torch, which `sweep status` never loads

        for mode in ("train", "val"):  # val: its loader remembers the random states each validation started from
            if mode in loaders:
                make_resumable(loaders[mode], trainer)
    return directory


def _absolute(run_dir: str | os.PathLike | None) -> Path | None:
    return None if run_dir is None else Path(run_dir).absolute()


def _claim_folders(directory: Path, outside: list[tuple[str, Path]]) -> None:
    """Claim the checkpoint folders outside the run; one another run claimed since the check fails this run."""
    try:
        for key, folder in outside:
            if not folder.is_relative_to(directory):
                folder_claims.claim(folder, directory, key=key)
    except ConfigError as err:
        finish(directory, Status.FAILED, error={"type": "ConfigError", "message": err.message})
        raise


def _requeued(experiment: Any, recorder: Any, named: Any) -> Path | None:
    """The run directory this SLURM job recorded before it was requeued, set up to continue from its newest
    checkpoint; None if there is none, or it has no checkpoint (then the job starts a new run)."""
    trainer = experiment.trainer
    if named is not None:
        candidates = [Path(named).absolute()]
    else:
        logger = versioned_logger(trainer)
        parent = (
            Path(logger.root_dir) if logger is not None else Path(trainer.default_root_dir) / "runs" / recorder.stage
        )
        candidates = candidate_dirs(parent.absolute())
    previous = requeued_run(candidates, recorder.stage)
    if previous is None:
        return None
    decision = decide(previous, Caller.REQUEUE)
    if decision.action is not Continuation.RESUME:
        return None
    resume_from(experiment, decision, recorder)
    return previous


def _logged_before(ckpt_path: Any) -> dict[str, Any]:
    """Where the logs of the run resumed from `ckpt_path` stop: its step, and its count of logged validation steps."""
    checkpoint = read_checkpoint(ckpt_path)
    val_steps = {int(k): int(v) for k, v in (checkpoint.get(LOG_STEPS_KEY) or {}).items()}
    return {"before_step": int(checkpoint.get("global_step", 0)), "before_val_steps": val_steps}


def finish(run_dir: Path | None, status: Status, trainer: Any = None, **details: Any) -> None:
    """Record how the run ended (rank 0 only): status, end time, where it got to, final metrics. (The trackers' run
    ids are recorded by `lighter.tracking` when they start.)"""
    if run_dir is None or process_rank() != 0:
        return
    if trainer is not None:
        details.update(progress={"epoch": int(trainer.current_epoch), "step": int(trainer.global_step)})
        if status is Status.FINISHED:
            details["metrics"] = final_metrics(trainer)
    update_record(run_dir, status=status.value, ended=now(), **details)


@dataclass
class Outcome:
    """What `recorded` hands on once the stage has ended: the run's directory (None if it keeps none) and the status
    recorded in its run.yaml, so that nothing in this process reads the file back."""

    directory: Path | None
    status: Status | None = None  # None while the stage runs


@contextlib.contextmanager
def recorded(
    experiment: Any, run_dir: str | os.PathLike | None = None, *, continuing: bool = False
) -> Iterator[Outcome]:
    """Claim the directory, run the body, record `finished`, `failed` or `interrupted`; exit 130/143 on a signal."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException  # lazy: Lightning, not for show/status

    outcome = Outcome(start(experiment, run_dir, continuing=continuing))
    directory, trainer = outcome.directory, experiment.trainer

    def end(status: Status, **details: Any) -> None:
        outcome.status = status
        finish(directory, status, trainer, **details)

    def stopped_at_once(name: str) -> None:
        end(Status.INTERRUPTED, interrupted={**_where(trainer, name), "checkpoint": None})

    stop = GracefulStop(trainer, on_second=stopped_at_once)
    try:
        with stop:
            yield outcome
    except SIGTERMException:
        name = stop.received or "SIGTERM"
        saved = experiment.recorder.interrupted_checkpoint
        end(
            Status.INTERRUPTED,
            interrupted={**_where(trainer, name), "checkpoint": None if saved is None else str(saved)},
        )
        _say_interrupted(directory, name, saved)
        raise SystemExit(EXIT_CODES[name]) from None
    except BaseException as err:
        end(Status.FAILED, error={"type": type(err).__name__, "message": str(err)})
        raise
    else:
        end(Status.FINISHED)
    finally:
        if process_rank() == 0:
            os.environ.pop(RUN_DIR_ENV, None)


def _where(trainer: Any, signal_name: str) -> dict[str, Any]:
    return {"signal": signal_name, "epoch": int(trainer.current_epoch), "step": int(trainer.global_step)}


def _say_interrupted(run_dir: Path | None, signal_name: str, saved: Path | None) -> None:
    if process_rank() != 0 or run_dir is None:
        return
    if saved is not None:
        tail = f"checkpoint saved. Continue with: lighter resume {shlex.quote(str(run_dir))}"
    else:
        tail = f"nothing to resume (it was not training). Run directory: {run_dir}"
    print(f"lighter: stopped by {signal_name}; {tail}", file=sys.stderr, flush=True)
