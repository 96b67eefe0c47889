"""A run's life in its directory: claimed before the stage starts, recorded as it ends.

`run.yaml` says `status: running` while the stage runs, then `finished`, `failed` (with `error: {type, message}`) or
`interrupted` (with `interrupted: {signal, epoch, step}`), and `ended`. The process exits 0, 1, 2 (a config error),
130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lighter.run.directory import RUN_DIR_ENV, claim_run_dir
from lighter.run.record import (
    CHECKPOINT_CONFIG_FILE,
    CHECKPOINT_KEY,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    dump,
    git_state,
    now,
    slurm_job,
    update_record,
    versions,
    write_atomic,
)

EXIT_CODES = {"finished": 0, "failed": 1, "config_error": 2, "SIGINT": 130, "SIGTERM": 143}


def _rank() -> int:
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def recorder_of(trainer: Any) -> Any:
    from lighter.run.recorder import RunRecorder

    return next((cb for cb in trainer.callbacks if isinstance(cb, RunRecorder)), None)


def _first_record(recorder: Any) -> dict[str, Any]:
    return {
        "status": "running",
        "stage": recorder.stage,
        "command": recorder.command,
        "started": now(),
        "ended": None,
        "cwd": str(Path.cwd()),
        "host": os.uname().nodename,
        "pid": os.getpid(),
        "seed": recorder.seed,
        "slurm": slurm_job(),
        "versions": versions(),
        "git": git_state(recorder.source),
    }


def _point_outputs_at(trainer: Any, run_dir: Path) -> None:
    """Checkpoints without a `dirpath` go to `<run dir>/checkpoints`; Lightning's HPC checkpoints to the run dir."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(run_dir / CHECKPOINTS_DIR)
    trainer._default_root_dir = str(run_dir)


def _trained_with(ckpt_path: Any) -> dict[str, Any] | None:
    """The config stored in the checkpoint a stage starts from, if it carries one."""
    if not isinstance(ckpt_path, str) or not Path(ckpt_path).is_file():
        return None
    from lighter.run.checkpoint import read_checkpoint

    return read_checkpoint(ckpt_path).get("hyper_parameters", {}).get(CHECKPOINT_KEY)


def start(experiment: Any, run_dir: str | os.PathLike | None = None) -> Path | None:
    """Claim the run's directory and write `config.yaml` and `run.yaml` (rank 0), or learn it (other ranks).

    None when the run keeps no directory: `lighter check`, `fast_dev_run`, or a Trainer built without recording.
    """
    trainer = experiment.trainer
    recorder = recorder_of(trainer)
    if recorder is None or trainer.fast_dev_run:
        return None
    if _rank() == 0:
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
        _point_outputs_at(trainer, directory)
        # The CSV logger warns that it will delete earlier logs in a folder that isn't empty: this one holds only
        # lighter's own files, and a resume puts the earlier rows back itself.
        warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    return directory


def finish(run_dir: Path | None, status: str, **details: Any) -> None:
    """Record how the run ended (rank 0 only)."""
    if run_dir is None or _rank() != 0:
        return
    update_record(run_dir, status=status, ended=now(), **details)


@contextlib.contextmanager
def recorded(experiment: Any, run_dir: str | os.PathLike | None = None) -> Iterator[Path | None]:
    """Claim the directory, run the body, record `finished`, `failed` or `interrupted`; exit 143 after SIGTERM."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    directory = start(experiment, run_dir)
    trainer = experiment.trainer
    try:
        yield directory
    except SIGTERMException:
        finish(directory, "interrupted", interrupted=_where(trainer, "SIGTERM"))
        _say_interrupted(directory, "SIGTERM")
        raise SystemExit(EXIT_CODES["SIGTERM"]) from None
    except BaseException as err:
        finish(directory, "failed", error={"type": type(err).__name__, "message": str(err)})
        raise
    else:
        finish(directory, "finished")
    finally:
        if _rank() == 0:
            os.environ.pop(RUN_DIR_ENV, None)


def _where(trainer: Any, signal_name: str) -> dict[str, Any]:
    return {"signal": signal_name, "epoch": int(trainer.current_epoch), "step": int(trainer.global_step)}


def _say_interrupted(run_dir: Path | None, signal_name: str) -> None:
    if _rank() != 0:
        return
    where = "" if run_dir is None else f" Its directory: {run_dir}."
    print(f"lighter: stopped by {signal_name}.{where}", file=sys.stderr)
