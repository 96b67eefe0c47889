"""`lighter sweep cancel OUT`, and Ctrl-C on a runner started with `--cancel-on-stop`: scancel the array tasks
SLURM still holds for trials under OUT.

A task that had started gets SLURM's SIGTERM: its trial stops after the step, saves a checkpoint and records
itself `pending` (interrupted), so a later `sweep run` resumes it. A queued one never started: it goes back to
`pending` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lighter.names import Status
from lighter.sweep import slurm_jobs
from lighter.sweep.trial import Trial


def on_slurm(trials: Sequence[Path]) -> dict[Path, str]:
    """{trial: its array task} for those of `trials` whose task SLURM still holds (queued or running)."""
    named = {t: Trial(Path(t)).record().get("slurm_job") for t in trials}
    named = {t: str(j) for t, j in named.items() if j}
    states = slurm_jobs.held(named.values()) if named else {}
    return {t: j for t, j in named.items() if slurm_jobs.phase((states or {}).get(j)) != "ended"}


def cancel(trials: Sequence[Path]) -> dict[Path, str]:
    """scancel the held tasks of `trials`; the ones still queued go back to `pending`. Returns what was cancelled."""
    held = on_slurm(trials)
    if not held:
        return {}
    slurm_jobs.cancel(held.values())
    for trial in held:
        record = Trial(Path(trial))
        if record.record().get("status") == Status.QUEUED.value:
            record.update(status=Status.PENDING.value)
    return held
