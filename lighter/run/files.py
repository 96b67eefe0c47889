"""The files of a run directory and the `run.yaml` record: written atomically, read back as plain data.

The one home of what every module that reads or writes a run's files shares: the time stamp, the YAML dump and
load, the atomic write, the process rank. The file names and the statuses a record holds live in `lighter.names`.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from lighter.names import (
    BATCH_LOG_FILE,
    CHECKPOINT_CONFIG_FILE,
    CHECKPOINT_FOLDER_OWNER,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    METRICS_FILE,
    RUN_FILE,
    TRIAL_FILE,
)
from lighter.utils.atomic import replacing

__all__ = [
    "BATCH_LOG_FILE",
    "CHECKPOINT_CONFIG_FILE",
    "CHECKPOINT_FOLDER_OWNER",
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "METRICS_FILE",
    "RUN_FILE",
    "TRIAL_FILE",
]
CHECKPOINT_KEY = "config"  # under a checkpoint's `hyper_parameters`: the config that trained it, as plain data
RUN_DIR_KEY = "lighter_run_dir"  # in each checkpoint: the run that wrote it, to tell runs apart in a shared dirpath
LOG_STEPS_KEY = "lighter_val_log_steps"  # in each checkpoint: Lightning's count of logged validation steps
_VERSIONED = ("torch", "pytorch-lightning", "torchmetrics", "monai", "lighter")


# libyaml when PyYAML has it: dumping a thousand trial configs in pure Python alone takes seconds.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def now() -> str:
    """The local time with its offset, to the second: how every record stamps an event."""
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def dump(data: Any) -> str:
    """Plain data as block YAML, keys in their written order: records, configs, `lighter show`."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def load(path: Path) -> Any:
    """The YAML in `path`, or None when the file does not exist."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    return yaml.load(text, Loader=_Loader)


def _temp_beside(path: Path, text: str) -> Path:
    """`text` in a new file in `path`'s folder, flushed to disk: ready to be renamed or linked into place."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return Path(temp)


def write_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Replace `path` with `text` so that a reader sees the old file or the new one, never a part.

    `durable` fsyncs the data first, for records a crash must not lose; files that can always be written again (a
    sweep's thousand trial configs) skip it, as most of the time of writing them would go to the fsyncs.
    """
    with replacing(path, durable=durable) as f:
        f.write(text)


def create_exclusive(path: Path, text: str) -> bool:
    """Write `path` whole, only if it does not exist yet; False if another process got there first.

    A hard link fails when the name exists, atomically, even across processes: this is how a run claims its directory.
    """
    temp = _temp_beside(path, text)
    try:
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's record, or None if the directory holds no `run.yaml`."""
    path = Path(run_dir) / RUN_FILE
    data = load(path)
    if data is None and not path.is_file():
        return None
    return data if isinstance(data, dict) else {}


def update_record(run_dir: Path, **changes: Any) -> dict[str, Any]:
    """Merge `changes` into `run.yaml` (top-level keys replaced) and write it back atomically."""
    record = read_record(run_dir) or {}
    record.update(changes)
    write_atomic(Path(run_dir) / RUN_FILE, dump(record))
    return record


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_state(folder: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the checkout containing `folder`, or None outside git."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit, "dirty": dirty, "folder": str(folder)}


def process_rank() -> int:
    """This process's rank under torchrun, SLURM or Lightning's launcher; 0 outside them."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def slurm_job() -> dict[str, str] | None:
    """The SLURM job this process runs in: id, array task and restart count, when there is one."""
    job = os.environ.get("SLURM_JOB_ID")
    if job is None:
        return None
    found = {"job_id": job}
    for key, name in (("SLURM_ARRAY_JOB_ID", "array_job_id"), ("SLURM_ARRAY_TASK_ID", "array_task_id")):
        if key in os.environ:
            found[name] = os.environ[key]
    found["restart_count"] = os.environ.get("SLURM_RESTART_COUNT", "0")
    return found
