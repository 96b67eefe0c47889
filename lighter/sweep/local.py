"""The local executor: N trials at once on this machine, each in its own process, each with its own GPU(s).

Trial processes fork from a warm server (multiprocessing's `forkserver`) that imported torch, Lightning, MONAI
and lighter once: each trial starts in a second instead of paying those imports, and still gets a process of its
own, so nothing one trial changes (seeds, modules, globals, devices) reaches the next. `warm=False` starts each
trial in a fresh interpreter instead (multiprocessing's `spawn`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import reduction
from multiprocessing.connection import Connection
from pathlib import Path

from lighter.errors import ConfigError
from lighter.names import Status
from lighter.sweep.attempt import EXIT_BUSY, EXIT_COMPLETE, OUTPUT_FILE, error_tail, record, run_trial
from lighter.sweep.lock import TrialLock
from lighter.sweep.trial import Trial

# Imported once by the warm server; every trial forks from it. Nothing here may touch CUDA (a forked child could
# not use it then): importing these modules does not.
PRELOAD = ["lighter.sweep.warm"]
WAIT_SECONDS = 5.0  # the longest the runner sleeps between looks at its trials' processes
STOP_GRACE_SECONDS = 60.0  # how long stopped trials get to save their state before SIGKILL


def visible_gpus() -> list[str]:
    """This machine's GPUs, as CUDA_VISIBLE_DEVICES names them, found without importing torch."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listed.splitlines()) if line.startswith("GPU ")]


@contextlib.contextmanager
def caller_main_hidden() -> Iterator[None]:
    """Start processes without the caller's `__main__`: a trial runs lighter's own functions and needs nothing of it.

    `spawn` and `forkserver` re-run the main module in each child, so a script calling `run_trials` without an
    `if __name__ == "__main__":` guard ran its sweep again in every child, and `python - < script.py` made every
    trial fail on a main path ('<stdin>') that does not exist.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def device_groups(jobs: int, gpus_per_trial: int, gpus: Sequence[str]) -> list[str | None]:
    """One CUDA_VISIBLE_DEVICES value per slot (None without GPUs): no two trials share a GPU."""
    if not gpus:
        return [None] * jobs
    groups = [",".join(gpus[i : i + gpus_per_trial]) for i in range(0, len(gpus), gpus_per_trial)]
    groups = [g for g in groups if len(g.split(",")) == gpus_per_trial]
    if not groups:
        raise ConfigError(
            f"{gpus_per_trial} GPUs per trial, but this machine shows {len(gpus)} ({','.join(gpus)})",
            suggestion=f"Use --gpus-per-trial {len(gpus)} or fewer, or run where more GPUs are visible.",
        )
    return groups[:jobs]


def _trial_process(
    trial_dir: str, lock: Connection, cwd: str, env: dict[str, str], threads: int | None, rerun_stale: bool
) -> None:
    """What runs in a trial's process: the runner's directory and environment, its devices and threads, the trial."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the warm server ignores it (see lighter.sweep.warm)
    try:
        lock_fd = reduction.recv_handle(lock)  # the runner's lock on the trial, now ours too
    except (EOFError, OSError):
        sys.exit(EXIT_BUSY)  # the runner died before it handed the trial over
    # A warm server keeps the directory and environment it started with; a trial gets the runner's of now.
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    if threads is not None and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    sys.exit(run_trial(trial_dir, rerun_stale=rerun_stale, lock_fd=lock_fd))


def _ready() -> None:
    """A process that only proves the warm server answers."""


def shell_exit_code(code: int | None) -> int | None:
    """A process's exit as a shell shows it: killed by signal N is 128+N (143 for SIGTERM), never -N."""
    return 128 - code if code is not None and code < 0 else code


def settle(trial_dir: Path, exit_code: int, lock: TrialLock | None = None) -> str:
    """How a trial's process ended, as a status; records it when the process died before it could.

    `lock` is the trial's lock if this process holds it; otherwise it is taken here if it is free.
    """
    if exit_code == EXIT_BUSY:
        return "busy"
    if exit_code == EXIT_COMPLETE:
        return "complete"
    with lock or TrialLock(trial_dir) as held:
        trial = Trial(Path(trial_dir)).record()
        if held and trial.get("status") == Status.RUNNING:  # killed before it wrote its own ending
            return record(trial_dir, exit_code, error_tail(Path(trial_dir) / OUTPUT_FILE))
    status = trial.get("status")
    if status == Status.PENDING and trial.get("interrupted"):
        return Status.INTERRUPTED.value
    if status in (Status.DONE, Status.PRUNED, Status.FAILED):
        return status
    return (Status.DONE if exit_code == 0 else Status.FAILED).value


@dataclass
class Running:
    trial: Path
    process: multiprocessing.process.BaseProcess
    slot: int
    lock: TrialLock  # held by the runner (and the trial's process) until the trial's end is recorded
    started: float = field(default_factory=time.perf_counter)

    def settle(self) -> str:
        return settle(self.trial, self.exit_code, self.lock)

    @property
    def exit_code(self) -> int | None:
        return shell_exit_code(self.process.exitcode)


class LocalExecutor:
    """Runs trials `jobs` at a time; `on_start(trial, devices)` and `on_end(trial, status, seconds, code)` report."""

    def __init__(self, jobs: int = 1, *, warm: bool = True, gpus_per_trial: int = 1, rerun_stale: bool = False):
        if jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {jobs}")
        self.devices = device_groups(jobs, gpus_per_trial, visible_gpus())
        self.jobs = len(self.devices)
        self.warm = warm
        self.rerun_stale = rerun_stale
        # Trials side by side share the CPU cores, unless the user chose a thread count.
        cores = os.cpu_count() or 1
        self.threads = None if self.jobs == 1 or "OMP_NUM_THREADS" in os.environ else max(1, cores // self.jobs)

    def _context(self) -> multiprocessing.context.BaseContext:
        if not self.warm:
            return multiprocessing.get_context("spawn")
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context

    def warm_up(self) -> float:
        """Start the warm server and wait until it has imported everything: the seconds that took (0 if cold)."""
        if not self.warm:
            return 0.0
        start = time.perf_counter()
        ready = self._context().Process(target=_ready, name="lighter-warm-up")
        with caller_main_hidden():
            ready.start()  # answered once the server has finished its imports
        ready.join()
        return time.perf_counter() - start

    def _start(self, context, trial: Path, slot: int, lock: TrialLock) -> Running:
        env = dict(os.environ)
        if self.devices[slot] is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.devices[slot]
        if self.threads is not None:
            env["OMP_NUM_THREADS"] = str(self.threads)
        ours, theirs = context.Pipe()
        args = (str(trial), theirs, os.getcwd(), env, self.threads, self.rerun_stale)
        process = context.Process(target=_trial_process, args=args, name=trial.name)
        try:
            with caller_main_hidden():
                process.start()
        except BaseException:
            lock.release()
            raise
        theirs.close()
        reduction.send_handle(ours, lock.fd, process.pid)
        ours.close()
        return Running(trial, process, slot, lock)

    def run(
        self,
        trials: Sequence[Path],
        on_start: Callable[[Path, str | None], None],
        on_end: Callable[[Path, str, float, int], bool],
        skip: Callable[[Path], str | None] = lambda trial: None,
        more: Callable[[], Path | None] = lambda: None,
    ) -> None:
        """Run every trial; stop starting new ones when `on_end` returns False. Ctrl-C/SIGTERM stop the rest.

        `skip(trial)`, asked just before a trial would start, returns a reason ("busy", "complete") to pass it by.
        `more()`, asked when a slot is free and `trials` are all started, gives the next trial (a search's), or None.
        """
        context = self._context()
        queue = list(trials)
        running: list[Running] = []
        stopping = False
        try:
            while True:
                free = sorted(set(range(self.jobs)) - {r.slot for r in running})
                while free and not stopping and (queue or _append(queue, more())):
                    trial = queue.pop(0)
                    lock = TrialLock(trial)
                    reason = skip(trial) if lock.acquire() else "busy"
                    if reason is not None:
                        lock.release()
                        on_end(trial, reason, 0.0, 0)
                        continue
                    slot = free.pop(0)
                    on_start(trial, self.devices[slot])
                    running.append(self._start(context, trial, slot, lock))
                if not running:
                    break
                multiprocessing.connection.wait([r.process.sentinel for r in running], timeout=WAIT_SECONDS)
                for done in [r for r in running if r.process.exitcode is not None]:
                    running.remove(done)
                    code = done.exit_code
                    status = done.settle()
                    if not on_end(done.trial, status, time.perf_counter() - done.started, code):
                        stopping = True
                        stop(running)
        except BaseException:
            stop(running)
            for left in running:
                on_end(left.trial, left.settle(), time.perf_counter() - left.started, left.exit_code)
            raise


def _append(queue: list[Path], trial: Path | None) -> bool:
    if trial is not None:
        queue.append(trial)
    return trial is not None


def stop(running: Sequence[Running], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every running trial (Lightning saves and records it as interrupted), SIGKILL after `grace`."""
    for r in running:
        if r.process.exitcode is None:
            r.process.terminate()
    deadline = time.monotonic() + grace
    for r in running:
        r.process.join(max(0.0, deadline - time.monotonic()))
        if r.process.exitcode is None:
            r.process.kill()
            r.process.join()
