"""A searched leaf on SLURM: one job array of W workers, each pulling trials from the leaf's one study.

1. The runner creates the study before anything is submitted (concurrent creation on a fresh database races).
2. It submits W array tasks (W: `--jobs N`, else the launcher's `array_parallelism`, else one per trial left in the
   budget). Each task runs `lighter.sweep.search_loop.worker`: the loop `lighter sweep run --jobs 1` runs on one
   machine. Trials the study has as running whose worker is gone continue first (resumed from their checkpoint or
   restarted, in their own directory: lighter/sweep/attempt.py); then the worker asks the study for new trials
   until `trials` are complete, pruned or running, each a trial directory of its own.
3. The study is all the workers share: W workers on M nodes meet the budget exactly and never use a number twice.
   It lives in the journal file in the leaf's output (which every node must see: a shared file system) or in a
   database (`launcher: {storage: postgresql+psycopg://...}`).
4. The runner waits for the tasks and prints each trial's start and end as the trial's `trial.yaml` records them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lighter.names import Status
from lighter.sweep import slurm_jobs
from lighter.sweep.events import Ended, Reporter
from lighter.sweep.expand import searched_trials
from lighter.sweep.slurm import (
    POLL_LOCAL_SECONDS,
    POLL_SECONDS,
    exit_code,
    has_result,
    log_of,
    make_executor,
    submit_array,
)
from lighter.sweep.slurm_errors import failed_at_start

ENDED = (Status.DONE.value, Status.PRUNED.value, Status.FAILED.value)
WAKE_SECONDS = 0.5  # how often the wait looks for a task's result file (a stat each, no scheduler call)


def worker_count(jobs: int, launcher: Mapping[str, Any], left: int) -> int:
    """How many array tasks pull from the study: `--jobs N`, else `array_parallelism`, else one per trial left."""
    if jobs > 1:
        return jobs
    parallelism = launcher.get("array_parallelism", launcher.get("slurm_array_parallelism"))
    return int(parallelism) if parallelism else max(1, left)


def _seconds(record: dict[str, Any]) -> float:
    try:
        return (
            dt.datetime.fromisoformat(record["ended"]) - dt.datetime.fromisoformat(record["started"])
        ).total_seconds()
    except (KeyError, TypeError, ValueError):
        return 0.0


class Watch:
    """Reports the trials of a leaf as their records change: a start when one runs, an end when it ended."""

    def __init__(self, leaf_dir: Path, reporter: Reporter):
        self.leaf_dir, self.reporter = leaf_dir, reporter
        # What each trial's record said before the workers started: an end recorded then is not this run's.
        self.before = {t.dir: r.get("ended") for t, r in searched_trials(leaf_dir)}
        self.started: set[Path] = set()
        self.ended: set[Path] = set()

    def look(self) -> None:
        for trial, record in searched_trials(self.leaf_dir):
            status = record.get("status")
            if status == Status.RUNNING.value and trial.dir not in self.started:
                self.started.add(trial.dir)
                self.reporter.start(trial.dir, None)
            fresh = record.get("ended") != self.before.get(trial.dir)
            if status in ENDED and fresh and trial.dir not in self.ended:
                self.ended.add(trial.dir)
                code = int(record.get("exit_code") or 0)
                self.reporter.end(Ended(trial.dir, status, _seconds(record), code))

    def left_running(self) -> list[Path]:
        """Trials this run saw start that did not end: their worker was stopped (time limit, scancel)."""
        return sorted(self.started - self.ended)


def submit(
    out: Path, launcher: Mapping[str, Any], call: Callable[..., int], args: Sequence[tuple]
) -> tuple[str, list[Any]]:
    """(the submitit cluster, one array task per `args` tuple running `call(*args)`); sbatch's refusal as a
    ConfigError."""
    executor = make_executor(out, launcher)
    return executor.cluster, submit_array(executor, launcher, call, *zip(*args, strict=True))


def wait(jobs: Sequence[Any], watch: Watch, cluster: str, launcher: Mapping[str, Any]) -> list[int]:
    """Until every task ended, reporting trials meanwhile; each task's exit code (the worker's). `poll_s` in the
    launcher block sets how often squeue is asked, as for a grid."""
    on_scheduler = cluster == "slurm"
    poll = float(launcher.get("poll_s") or POLL_SECONDS.get(cluster, POLL_LOCAL_SECONDS))
    waiting = list(jobs)
    while waiting:
        states = slurm_jobs.held(str(job.job_id) for job in waiting) if on_scheduler else None
        if states is None:
            waiting = [job for job in waiting if not job.done()]
        else:
            waiting = [job for job in waiting if slurm_jobs.phase(states.get(str(job.job_id))) != "ended"]
        watch.look()
        if waiting:
            _sleep(poll, waiting)
    codes = []
    for index, job in enumerate(jobs):
        if on_scheduler and not has_result(job) and not watch.started:
            raise failed_at_start(str(job.job_id), f"search worker {index}", *log_of(job))
        codes.append(exit_code(job))
    return codes


def _sleep(poll: float, waiting: Sequence[Any]) -> None:
    """`poll` seconds, or less once another task has written its result: the scheduler is asked again only then."""
    results = sum(has_result(job) for job in waiting)
    end = time.monotonic() + poll
    while time.monotonic() < end and sum(has_result(job) for job in waiting) == results:
        time.sleep(WAKE_SECONDS)


def worker_log(job: Any) -> Path:
    return Path(job.paths.stderr)
