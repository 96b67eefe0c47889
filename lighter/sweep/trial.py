"""A trial: its directory, its `trial.yaml` record and the status transitions the runner writes.

`trial.yaml` keys: `trial` ("trial_000"), `leaf`, `mode`, `axes` ({key path: value}, seed included when it is an
axis), `status`, `in_sweep`, `config_hash` (of the `config.yaml` expansion wrote last), `run_hash` (of the config
the latest run started with, from `mark_running`), `ran_hash` (what a stale trial ran), `exit_code` and `error_tail`,
`started`/`ended`, `slurm_job` (the SLURM array task that runs it, e.g. "12_3"). Every change is a
read-modify-write under a short lock on `.trial.lock`, written atomically and fsynced, so an expansion and a
runner can update the same trial at once without losing either's change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from lighter.sweep.files import dump, load, locked, write_atomic

TRIAL_FILE = "trial.yaml"
CONFIG_FILE = "config.yaml"
RUN_FILE = "run.yaml"  # written by `lighter fit --run-dir`
BATCH_LOG_FILE = "batch_log.csv"
LOCK_FILE = ".trial.lock"  # guards trial.yaml updates only; a runner's lock for a whole run is another file
FINISHED = "finished"  # run.yaml's status of a run that ended normally
ERROR_TAIL_LINES = 20


class Status(str, Enum):
    PENDING = "pending"
    QUEUED = "queued"  # submitted to SLURM (`slurm_job` names the array task), not started yet
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STALE = "stale"  # done, but the config changed since the run started: rerun only when asked
    PRUNED = "pruned"  # a searched trial its study's pruner stopped early; finished, like done


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trial_name(number: int) -> str:
    return f"trial_{number:03d}"


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class Trial:
    """One trial: `dir` is also its run directory (`lighter fit <config_path> --run-dir <dir>`)."""

    dir: Path

    @property
    def config_path(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def record_path(self) -> Path:
        return self.dir / TRIAL_FILE

    @property
    def name(self) -> str:
        return self.dir.name

    def record(self) -> dict[str, Any]:
        """The trial's `trial.yaml` as a dict (empty if it has none yet)."""
        data = load(self.record_path)
        return data if isinstance(data, dict) else {}

    @property
    def axes(self) -> dict[str, Any]:
        return dict(self.record().get("axes") or {})

    @property
    def leaf(self) -> str:
        return str(self.record().get("leaf", ""))

    @property
    def in_sweep(self) -> bool:
        return bool(self.record().get("in_sweep", True))

    def status(self) -> Status:
        """The recorded status; expansion records `stale` when a done trial's config changes."""
        return status_of(self.record())

    def run_record(self) -> dict[str, Any] | None:
        data = load(self.dir / RUN_FILE)
        return data if isinstance(data, dict) else None

    def complete(self) -> bool:
        """Its run finished (run.yaml status `finished`) and its batch log exists; what a killed run left is not."""
        run = self.run_record()
        return bool(run) and run.get("status") == FINISHED and (self.dir / BATCH_LOG_FILE).is_file()

    def update(self, defaults: dict[str, Any] | None = None, *, durable: bool = True, **changes: Any) -> dict[str, Any]:
        """Merge `changes` into trial.yaml under the trial's lock (a value None removes the key); `defaults` only fill
        keys the record lacks, so an expansion never overwrites a status that a runner wrote a moment before.
        `durable=False` skips the fsync, for what an expansion can always write again."""
        with locked(self.dir / LOCK_FILE):
            record = self.record()
            for key, value in (defaults or {}).items():
                record.setdefault(key, value)
            old_hash = record.get("config_hash")
            for key, value in changes.items():
                if value is None:
                    record.pop(key, None)
                else:
                    record[key] = value
            _track_staleness(record, old_hash)
            write_atomic(self.record_path, dump(record), durable=durable)
        return record

    def mark_running(self) -> dict[str, Any]:
        """The runner starts the trial now, with the config expansion wrote last."""
        return self.update(
            status=Status.RUNNING.value,
            run_hash=self.record().get("config_hash"),
            started=_now(),
            ended=None,
            pid=os.getpid(),
            host=os.uname().nodename,
            slurm_job=_slurm_task(),
            exit_code=None,
            error_tail=None,
        )

    def mark_done(self) -> dict[str, Any]:
        return self.update(status=Status.DONE.value, ended=_now(), pid=None, exit_code=None, error_tail=None)

    def mark_pruned(self, reason: str) -> dict[str, Any]:
        return self.update(status=Status.PRUNED.value, ended=_now(), pid=None, pruned=reason)

    def mark_failed(self, exit_code: int, error: str | list[str] = "") -> dict[str, Any]:
        """Record a failure: the exit code and the last lines of the error (a text or its lines)."""
        lines = error.splitlines() if isinstance(error, str) else list(error)
        tail = "\n".join(lines[-ERROR_TAIL_LINES:])
        return self.update(
            status=Status.FAILED.value, ended=_now(), pid=None, exit_code=int(exit_code), error_tail=tail
        )

    def mark_pending(self) -> dict[str, Any]:
        """Back to pending, e.g. after its runner was killed: the next run resumes or restarts it."""
        return self.update(status=Status.PENDING.value, pid=None, ended=None)


def _slurm_task() -> str | None:
    """This process's SLURM job as squeue names it ("12_3" for an array task), None outside SLURM."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def _track_staleness(record: dict[str, Any], old_hash: str | None) -> None:
    """A done trial whose config changes turns stale, keeping the hash of what it ran as `ran_hash`; it is done
    again if the config returns to that. Only a change of `config_hash` moves it, so a runner that writes `status`
    itself (without `mark_running`'s `run_hash`) gets the same record."""
    new_hash = record.get("config_hash")
    if not old_hash or new_hash == old_hash:
        return
    if status_of({**record, "config_hash": old_hash}) is Status.DONE:
        ran = record.pop("run_hash", None) or old_hash
        record.update(status=Status.STALE.value, ran_hash=ran)
    elif record.get("status") == Status.STALE.value and record.get("ran_hash") == new_hash:
        record["status"] = Status.DONE.value
        record["run_hash"] = record.pop("ran_hash")


def status_of(record: dict[str, Any]) -> Status:
    """The trial's status from its record: as written, except that a done trial whose `run_hash` (what its run
    started with) differs from `config_hash` is stale."""
    stored = Status(record.get("status", Status.PENDING.value))
    if stored is Status.DONE and record.get("run_hash") not in (None, record.get("config_hash")):
        return Status.STALE
    return stored
