"""One lock per trial, so two runners on the same output never run the same trial at once.

An exclusive `flock` on `<trial>/.lock`: the kernel releases it when the holding process dies, however it dies,
so a killed runner never leaves a trial locked. The file itself stays; it says who held it last.

The local runner takes the lock before it starts a trial's process and hands that process a descriptor of the same
open file: the lock then lasts as long as either lives, so a runner killed on its own never frees a trial whose
process still runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for one read-modify-write; the OS frees it if we die."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class TrialLock:
    """`with TrialLock(trial_dir) as held:` is True while this process holds the trial, False if another does."""

    def __init__(self, trial_dir: str | os.PathLike, fd: int | None = None):
        self.path = Path(trial_dir) / LOCK_FILE
        self._fd = fd  # given: a descriptor of a lock already held, e.g. handed over by the runner

    @property
    def fd(self) -> int | None:
        return self._fd

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes (O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> bool:
        return self.held or self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(trial_dir: str | os.PathLike) -> bool:
    """Whether some process holds the trial right now (a trial marked running with no holder was killed)."""
    path = Path(trial_dir) / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
