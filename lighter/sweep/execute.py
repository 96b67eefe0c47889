"""Run expanded trials' directories that are not complete, locally or on SLURM, reporting each as it ends.

`lighter sweep run` (`sweep_run.run_trials`) and a searched leaf (`search_loop.run_search`) both run trials here.
Idempotent: a second run after a crash, a kill or an edit runs only what is left (killed trials resume from their
last checkpoint), and two runners on the same output share the work, each trial run by one of them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lighter.names import Status
from lighter.run.lifecycle import EXIT_CODES
from lighter.sweep.attempt import plan
from lighter.sweep.events import Ended, Reporter
from lighter.sweep.local import LocalExecutor
from lighter.sweep.slurm import SlurmExecutor
from lighter.sweep.trial import Trial, trials_count

EXECUTORS = ("local", "slurm")


class SweepInterrupted(Exception):
    """The runner was stopped by a signal; trials it had started were stopped and can be resumed."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


@dataclass
class SweepRun:
    """What a `run_dirs` (or `run_trials`) call did: every trial it ended, in order, and how many were complete
    already."""

    out: Path
    ended: list[Ended] = field(default_factory=list)
    complete_before: int = 0
    interrupted: str | None = None  # the signal that stopped the runner

    @property
    def failed(self) -> list[Ended]:
        return [e for e in self.ended if e.status == Status.FAILED]

    @property
    def exit_code(self) -> int:
        """0 when every trial is done; 1 when one failed or was stopped; 130 or 143 when a signal stopped the runner."""
        if self.interrupted is not None:
            return EXIT_CODES["SIGINT" if self.interrupted == "SIGINT" else "SIGTERM"]
        return 1 if self.failed or any(e.status == Status.INTERRUPTED for e in self.ended) else 0


def to_run(trials: Sequence[Path], *, rerun_stale: bool = False) -> tuple[list[Path], int]:
    """The trials that still need a run, and how many are complete."""
    left = [t for t in trials if Trial(Path(t)).record().get("in_sweep", True) is not False]
    todo = [t for t in left if plan(t, rerun_stale=rerun_stale) != "complete"]
    return todo, len(left) - len(todo)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM stops the runner the way Ctrl-C does, so it can stop its trials and print where things stand."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SweepInterrupted("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_dirs(
    trials: Sequence[Path],
    out: Path,
    *,
    jobs: int = 1,
    executor: str = "local",
    fail_fast: bool = False,
    rerun_stale: bool = False,
    launcher: Mapping[str, Any] | None = None,
    warm: bool = True,
    gpus_per_trial: int = 1,
    stream: TextIO | None = None,
    more: Callable[[], Path | None] | None = None,
    ended: Callable[[Path, str, int], None] = lambda trial, status, code: None,
    headline: str | None = None,
) -> SweepRun:
    """Run the given (expanded) trial directories that are not complete; see `run_trials`.

    A search (lighter/sweep/search_loop.py) passes `more`, which asks its study for the next trial when a slot is free,
    `ended(trial, status, exit_code)`, which tells the study how a trial ended, and its own `headline`."""
    if executor not in EXECUTORS:
        raise ValueError(f"--executor must be one of {', '.join(EXECUTORS)}, got '{executor}'")
    out = Path(out)
    reporter = Reporter(out, stream)
    todo, complete = to_run(trials, rerun_stale=rerun_stale)
    result = SweepRun(out, reporter.ended, complete)

    def on_start(trial: Path, devices: str | None) -> None:
        reporter.start(trial, devices)

    def on_end(trial: Path, status: str, seconds: float, code: int) -> bool:
        ended(trial, status, code)
        reporter.end(Ended(trial, status, seconds, code))
        return not (fail_fast and status == Status.FAILED)

    if executor == "local":

        def skip(trial: Path) -> str | None:
            # Asked with the trial's lock held: another runner may have completed it since the list was made.
            return "complete" if plan(trial, rerun_stale=rerun_stale) == "complete" else None

        local = LocalExecutor(jobs, warm=warm, gpus_per_trial=gpus_per_trial, rerun_stale=rerun_stale)
        where = f", {local.jobs} at a time" if local.jobs > 1 else ""
        if local.devices[0] is not None:
            where += f", GPUs {' | '.join(local.devices)}"

        def start() -> None:
            if (todo or more is not None) and warm:
                seconds = local.warm_up()
                reporter.say(f"imported torch, Lightning and MONAI once for every trial ({seconds:.1f} s)")
            local.run(todo, on_start, on_end, skip, more or (lambda: None))
    else:
        slurm = SlurmExecutor(out, dict(launcher or {}), rerun_stale=rerun_stale)
        held = slurm.on_slurm(todo)
        where = " (SLURM job array)"
        if held:
            where += f"; {len(held)} of them already on SLURM ({', '.join(sorted(held.values()))}): not submitted again"

        def start() -> None:
            stop = (
                "Ctrl-C cancels them"
                if (launcher or {}).get("cancel_on_stop")
                else f"Ctrl-C stops waiting, not the jobs: `lighter sweep cancel {out}` does"
            )
            submitted = lambda job_id, count: reporter.say(_submitted(job_id, count, stop))  # noqa: E731
            slurm.run(todo, on_start, on_end, submitted, reporter.say, held)

    reporter.say((headline or f"{trials_count(len(trials))} in {out}: {complete} complete, {len(todo)} to run") + where)
    stopped = [t for t in todo if Trial(Path(t)).status() is Status.INTERRUPTED]
    if stopped:
        # `sweep status` shows these as interrupted too: their process ended without recording its end, or a signal
        # stopped them. Each resumes from its newest checkpoint, else starts again.
        reporter.say(f"{len(stopped)} interrupted: {', '.join(reporter.name(t) for t in stopped)}")
    try:
        with sigterm_raises():
            start()
    except KeyboardInterrupt:
        result.interrupted = "SIGINT"
    except SweepInterrupted as stop:
        result.interrupted = stop.signal_name
    if fail_fast and result.failed:
        reporter.say("--fail-fast: stopped at the first failure.")
    if result.interrupted and executor == "slurm" and (launcher or {}).get("cancel_on_stop"):
        cancelled = slurm.cancel()
        tasks = ", ".join(sorted(cancelled.values())) or "none was left"
        reporter.say(f"stopped by {result.interrupted}; cancelled the SLURM tasks ({tasks}); a rerun continues them.")
    elif result.interrupted and executor == "slurm":
        reporter.say(
            f"stopped waiting ({result.interrupted}); the submitted jobs keep running: "
            f"`lighter sweep cancel {out}` cancels them, the same `sweep run` waits for them again."
        )
    elif result.interrupted:
        reporter.say(f"stopped by {result.interrupted}; run the same command again to continue.")
    reporter.say(reporter.summary(complete))
    return result


def _submitted(job_id: str, count: int, stop: str) -> str:
    trials = f"{count} trial" + ("s" if count != 1 else "")
    return f"submitted {trials} as job array {job_id}; waiting for them ({stop})"
