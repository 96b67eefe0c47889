"""SLURM requeue: a requeued job continues its own run directory instead of starting a new run.

Lightning's auto-requeue (SIGUSR1, `SLURMEnvironment(auto_requeue=True)`) saves `hpc_ckpt_N.ckpt` into the trainer's
`default_root_dir`, which lighter points at the run directory, and requeues the job. The requeued job runs the same
command again, with the same SLURM_JOB_ID and SLURM_RESTART_COUNT > 0: `requeued_run` finds the run directory that
job recorded, so the run continues there from its newest checkpoint, as `lighter resume` would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lighter.run.files import RUN_FILE, read_record, slurm_job


def _job_key(job: dict[str, Any] | None) -> tuple[str | None, str | None] | None:
    if not job:
        return None
    return job.get("array_job_id", job.get("job_id")), job.get("array_task_id")


def requeued_run(candidates: list[Path], stage: str) -> Path | None:
    """The run directory among `candidates` that this SLURM job recorded before it was requeued, if any."""
    job = slurm_job()
    if job is None or job.get("restart_count", "0") in ("", "0"):
        return None
    mine = _job_key(job)
    found = []
    for folder in candidates:
        record = read_record(folder)
        if record and record.get("stage") == stage and _job_key(record.get("slurm")) == mine:
            found.append(folder)
    return max(found, key=lambda f: (f / RUN_FILE).stat().st_mtime) if found else None


def candidate_dirs(parent: Path) -> list[Path]:
    """The run directories directly under `parent`."""
    if not parent.is_dir():
        return []
    return [p for p in parent.iterdir() if p.is_dir() and (p / RUN_FILE).is_file()]


def is_restart() -> bool:
    return os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0") and "SLURM_JOB_ID" in os.environ
