"""What SLURM holds right now: the state of each array task, asked of `squeue` (no accounting database needed).

The runner asks here rather than through submitit's `sacct` polling for two reasons: many small clusters run
without accounting (then `sacct` fails on every poll and submitit reports every state as UNKNOWN), and a requeued
task has already written the result file of its earlier run, so the file alone says "done" while SLURM is about to
start it again. A task SLURM no longer holds has ended; its result file says how. `sweep status` asks here too
(`as_scheduled`): the records say what lighter did, the queue what SLURM does now.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from typing import Any

from lighter.names import Status
from lighter.run.status import alive

# The statuses SLURM's queue can correct: a trial not finished, whose task SLURM may hold.
UNFINISHED = (Status.PENDING, Status.QUEUED, Status.RUNNING, Status.INTERRUPTED)
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


def as_scheduled(records: Sequence[dict[str, Any]], statuses: Sequence[Status]) -> list[Status]:
    """Each trial's status (from its records) as SLURM's queue has it now, asking squeue once for all of them.

    A task SLURM holds is `queued` or `running`, whatever the records say: a requeued trial recorded itself
    pending (interrupted) when it stopped, and one whose task started is `running` before lighter writes so. A
    trial recorded `queued` whose task SLURM no longer holds never started (cancelled, or failed at start): it is
    `pending`, as the next `sweep run` will submit it. One recorded `running` on another host whose task SLURM no
    longer holds was killed there (its process cannot be checked from here): `interrupted`. Without squeue, or for
    trials never submitted, the records stand.
    """
    jobs = [str(r.get("slurm_job") or "") if s in UNFINISHED else "" for r, s in zip(records, statuses, strict=True)]
    states = held(j for j in jobs if j) if any(jobs) else None
    if states is None:
        return list(statuses)
    corrected = []
    for record, status, job in zip(records, statuses, jobs, strict=True):
        now = phase(states.get(job)) if job else None
        if now == "queued":
            status = Status.QUEUED
        elif now == "running":
            status = Status.RUNNING
        elif now == "ended" and status is Status.QUEUED:
            status = Status.PENDING
        elif now == "ended" and status is Status.RUNNING and alive(record) is None:
            status = Status.INTERRUPTED
        corrected.append(status)
    return corrected
