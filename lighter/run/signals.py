"""SIGINT and SIGTERM during a stage: finish the current step, then stop through Lightning's own SIGTERM path.

Lightning already stops a fit after the step in which SIGTERM arrived (it raises `SIGTERMException` at the next step
boundary, on every rank); Ctrl-C instead raises `KeyboardInterrupt` wherever the process happens to be, possibly
inside an optimizer step. Here both signals take the first path, and the signal's name is kept so the run's record
and exit code can tell them apart. A second Ctrl-C exits at once (status recorded, exit 130).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from lighter.run.files import process_rank

NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class GracefulStop:
    """While active, SIGINT and SIGTERM ask `trainer` to stop after the current step; `received` names the first."""

    def __init__(self, trainer: Any, on_second: Callable[[str], None]):
        self.trainer = trainer
        self.on_second = on_second  # records the status before the process ends at once
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        name = NAMES[signal.Signals(signum)]
        if self.received is not None:
            if name == "SIGINT":
                print("\nlighter: second Ctrl-C: stopping now, without a checkpoint.", file=sys.stderr, flush=True)
                self.on_second(name)
                os._exit(130)
            return  # Lightning's own SIGTERM handler, composed with this one, already did its part
        self.received = name
        self.trainer._signal_connector.received_sigterm = True
        if process_rank() == 0:
            print(
                f"\nlighter: {name} received: stopping after the current step and saving a checkpoint"
                + (" (Ctrl-C again stops at once)." if name == "SIGINT" else "."),
                file=sys.stderr,
                flush=True,
            )

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in NAMES:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
