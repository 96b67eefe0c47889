"""A trial: its directory, its `trial.yaml` record and the status transitions the runner writes.

`trial.yaml` keys: `trial` ("trial_000"), `leaf`, `mode`, `axes` ({key path: value}, seed included when it is an
axis), `status`, `in_sweep`, `config_hash` (of the `config.yaml` expansion wrote last), `run_hash` (of the config
the latest run started with, from `mark_running`; a resume keeps it), `pid`/`host`/`pid_started` (the process that
runs it), `exit_code` and `error_tail`, `started`/`ended`, `slurm_job` (the SLURM array task that runs it, e.g.
"12_3"). Every change is a read-modify-write under a short lock on `.trial.lock`, written atomically and fsynced, so
an expansion and a runner can update the same trial at once without losing either's change. What the status is now
(stale, interrupted, no longer complete) is `lighter.run.status`'s to say, from this record and the trial's files.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighter.names import BATCH_LOG_FILE, CONFIG_FILE, RUN_FILE, TRIAL_FILE, Status
from lighter.run.files import dump, load, now, write_atomic
from lighter.run.status import run_complete, this_process, trial_status
from lighter.sweep.lock import locked

__all__ = ["BATCH_LOG_FILE", "CONFIG_FILE", "RUN_FILE", "TRIAL_FILE", "Status", "Trial"]

LOCK_FILE = ".trial.lock"  # guards trial.yaml updates only; a runner's lock for a whole run is another file
ERROR_TAIL_LINES = 20
NOT_RUNNING = {"pid": None, "host": None, "pid_started": None}  # cleared when the trial's process ends


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trial_name(number: int) -> str:
    return f"trial_{number:03d}"


def trials_count(count: int) -> str:
    """`1 trial`, `2 trials`."""
    return f"{count} trial{'' if count == 1 else 's'}"


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
        """The status now (see `lighter.run.status.trial_status`)."""
        return trial_status(self.dir, self.record(), self.run_record())

    def run_record(self) -> dict[str, Any] | None:
        data = load(self.dir / RUN_FILE)
        return data if isinstance(data, dict) else None

    def complete(self) -> bool:
        """Its run finished (run.yaml status `finished`) and its batch log exists; what a killed run left is not."""
        return run_complete(self.dir, self.run_record())

    def update(self, defaults: dict[str, Any] | None = None, *, durable: bool = True, **changes: Any) -> dict[str, Any]:
        """Merge `changes` into trial.yaml under the trial's lock (a value None removes the key); `defaults` only fill
        keys the record lacks, so an expansion never overwrites a status that a runner wrote a moment before.
        `durable=False` skips the fsync, for what an expansion can always write again."""
        with locked(self.dir / LOCK_FILE):
            record = self.record()
            for key, value in (defaults or {}).items():
                record.setdefault(key, value)
            _one_hash(record)
            old_hash = record.get("config_hash")
            for key, value in changes.items():
                if value is None:
                    record.pop(key, None)
                else:
                    record[key] = value
            if record.get("status") == Status.DONE.value and old_hash and "run_hash" not in record:
                record["run_hash"] = old_hash  # written `done` by a runner of its own: it ran what expansion wrote
            write_atomic(self.record_path, dump(record), durable=durable)
        return record

    def mark_running(self, run_hash: str | None = None) -> dict[str, Any]:
        """This process starts the trial now, with the config expansion wrote last (a resume passes the `run_hash`
        its run started with)."""
        return self.update(
            status=Status.RUNNING.value,
            run_hash=run_hash or self.record().get("config_hash"),
            started=now(),
            ended=None,
            slurm_job=_slurm_task(),
            exit_code=None,
            error_tail=None,
            **this_process(),
        )

    def mark_done(self) -> dict[str, Any]:
        return self.update(status=Status.DONE.value, ended=now(), exit_code=None, error_tail=None, **NOT_RUNNING)

    def mark_pruned(self, reason: str) -> dict[str, Any]:
        return self.update(status=Status.PRUNED.value, ended=now(), pruned=reason, **NOT_RUNNING)

    def mark_failed(self, exit_code: int, error: str | list[str] = "") -> dict[str, Any]:
        """Record a failure: the exit code and the last lines of the error (a text or its lines)."""
        lines = error.splitlines() if isinstance(error, str) else list(error)
        tail = "\n".join(lines[-ERROR_TAIL_LINES:])
        return self.update(
            status=Status.FAILED.value, ended=now(), exit_code=int(exit_code), error_tail=tail, **NOT_RUNNING
        )

    def mark_pending(self) -> dict[str, Any]:
        """Back to pending, e.g. after its runner was killed: the next run resumes or restarts it."""
        return self.update(status=Status.PENDING.value, ended=None, **NOT_RUNNING)


def _slurm_task() -> str | None:
    """This process's SLURM job as squeue names it ("12_3" for an array task), None outside SLURM."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def _one_hash(record: dict[str, Any]) -> None:
    """Records of older lighters kept what a stale trial ran as `ran_hash` and stored `stale`: one `run_hash`, and
    `done` (staleness is derived from the hashes, never stored)."""
    if "ran_hash" in record:
        record["run_hash"] = record.pop("ran_hash")
    if record.get("status") == Status.STALE.value:
        record["status"] = Status.DONE.value
