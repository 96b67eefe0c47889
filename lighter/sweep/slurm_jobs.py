"""What SLURM holds right now: the state of each array task, asked of `squeue` (no accounting database needed).

The runner asks here rather than through submitit's `sacct` polling for two reasons: many small clusters run
without accounting (then `sacct` fails on every poll and submitit reports every state as UNKNOWN), and a requeued
task has already written the result file of its earlier run, so the file alone says "done" while SLURM is about to
start it again. A task SLURM no longer holds has ended; its result file says how.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

QUEUED_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESV_DEL_HOLD", "SUSPENDED")
RUNNING_STATES = ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING")


def held(job_ids: Iterable[str]) -> dict[str, str] | None:
    """{task id ("12_3"): SLURM state} of the given jobs' tasks that SLURM still holds; None when squeue can't say.

    An array's id ("12") stands for all its tasks, one line each (`squeue --array`).
    """
    ids = sorted({str(j).split("_")[0] for j in job_ids})
    if not ids:
        return {}
    if shutil.which("squeue") is None:
        return None
    try:
        done = subprocess.run(
            ["squeue", "--noheader", "--array", "--jobs", ",".join(ids), "--format", "%i|%T"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        # Asked only for jobs it has forgotten, squeue says so and fails: none is held.
        return {} if "Invalid job id" in done.stderr else None
    states = {}
    for line in done.stdout.splitlines():
        task, _, state = line.strip().partition("|")
        if task:
            states[task] = state
    return states


def phase(state: str | None) -> str:
    """`queued`, `running` or `ended` for a SLURM state (None: no longer held)."""
    if state is None:
        return "ended"
    if state in RUNNING_STATES:
        return "running"
    return "queued" if state in QUEUED_STATES else "ended"


def cancel(job_ids: Iterable[str]) -> subprocess.CompletedProcess[str]:
    """scancel the given jobs (whole arrays, or single tasks)."""
    return subprocess.run(["scancel", *sorted(set(job_ids))], capture_output=True, text=True, timeout=60)
