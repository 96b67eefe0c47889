"""A run's or a sweep trial's status as it stands now: what its record says, checked against the process it names
and the files it left. `lighter resume`, `lighter sweep status|run|results` and the dashboard all ask here.

A record says `running` while its process runs; a process killed outright (SIGKILL, power loss, a dead node) never
writes its end. So `running` is believed only while the process the record names lives: same host, same pid, and the
same process start time (a pid the system reused for another process does not count). Records written on another
host, or before lighter recorded start times, cannot be checked from here: their `running` stands.

A trial is complete when its run finished (`run.yaml`) and its `batch_log.csv` exists: what `sweep run` skips is
exactly what this calls done, whatever `trial.yaml` said before those files changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil

from lighter.names import BATCH_LOG_FILE, Status
from lighter.run.files import read_record


def _started(pid: int) -> float | None:
    try:
        return round(psutil.Process(pid).create_time(), 2)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def this_process() -> dict[str, Any]:
    """The fields a record keeps to tell later whether its process still lives: pid, host, process start time."""
    return {"pid": os.getpid(), "host": os.uname().nodename, "pid_started": _started(os.getpid())}


def alive(record: dict[str, Any]) -> bool | None:
    """Whether the process a record names still runs: True, False, or None when that cannot be told from here."""
    pid, host = record.get("pid"), record.get("host")
    if not isinstance(pid, int) or host != os.uname().nodename:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False  # killed, and its parent has not collected it yet
        started = round(process.create_time(), 2)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # another user's process with that pid: it exists, and may be it
    recorded = record.get("pid_started")
    return recorded is None or recorded == started


def run_status(record: dict[str, Any]) -> str | None:
    """A `run.yaml` status as it stands: `running` whose process is gone reads `interrupted`."""
    status = record.get("status")
    if status == Status.RUNNING and alive(record) is False:
        return Status.INTERRUPTED.value
    return status if isinstance(status, str) else None


def run_complete(trial_dir: Path, run: dict[str, Any] | None = None) -> bool:
    """The run in `trial_dir` finished (run.yaml) and its batch log exists; what a killed run left is not."""
    run = read_record(trial_dir) if run is None else run
    return bool(run) and run.get("status") == Status.FINISHED and (Path(trial_dir) / BATCH_LOG_FILE).is_file()


def run_hash(record: dict[str, Any]) -> str | None:
    """The hash of the config the trial's latest run started with (`ran_hash` in records of older lighters)."""
    return record.get("run_hash") or record.get("ran_hash")


def config_changed(record: dict[str, Any]) -> bool:
    """The config expansion wrote last is not the one the trial's latest run started with."""
    ran = run_hash(record)
    return ran is not None and ran != record.get("config_hash")


def stored_status(record: dict[str, Any]) -> Status:
    """The status `trial.yaml` holds (older lighters stored `stale`, which is `done` with a changed config)."""
    value = record.get("status", Status.PENDING.value)
    return Status.DONE if value == Status.STALE.value else Status(value)


def trial_status(trial_dir: str | os.PathLike, record: dict[str, Any], run: dict[str, Any] | None = None) -> Status:
    """The trial's status now, from its `trial.yaml` record, its process and its run's files.

    - `running` whose process is gone: interrupted; stopped by a signal (`interrupted` recorded): interrupted;
    - complete (see above): done (pruned, when its study's pruner stopped it), or stale when the config changed
      since its run started;
    - recorded done or pruned but no longer complete (its batch log or run.yaml removed or changed): pending, as
      `sweep run` will run it again.
    `run` is the trial's `run.yaml`, when the caller has read it already.
    """
    stored = stored_status(record)
    if stored is Status.RUNNING:
        return Status.INTERRUPTED if alive(record) is False else Status.RUNNING
    run = read_record(Path(trial_dir)) if run is None else run
    if run_complete(Path(trial_dir), run):
        if config_changed(record):
            return Status.STALE
        return Status.PRUNED if stored is Status.PRUNED or run.get("pruned") else Status.DONE
    if stored in (Status.DONE, Status.PRUNED):
        return Status.PENDING
    if stored is Status.PENDING and record.get("interrupted"):
        return Status.INTERRUPTED
    return stored
