"""What `lighter sweep run` prints: a line per trial start and end, failures as they happen, a closing table."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from lighter.names import Status
from lighter.sweep.attempt import OUTPUT_FILE
from lighter.sweep.trial import Trial


@dataclass
class Ended:
    trial: Path
    status: str  # done | failed | interrupted | busy | complete
    seconds: float
    exit_code: int


_ERROR_LINE = re.compile(r"^(lighter: error: |[\w.]*(Error|Exception|Interrupt)\b)")


def error_line(tail: str) -> str:
    """The line of an error tail that says what went wrong: lighter's error, or the exception, else the last."""
    lines = [line for line in tail.strip().splitlines() if line.strip()]
    found = [line for line in lines if _ERROR_LINE.match(line)]
    return (found or lines or ["no output"])[-1].strip()


def _clock() -> str:
    return dt.datetime.now().strftime("%H:%M:%S")


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _axes(trial: Path) -> str:
    axes = Trial(Path(trial)).record().get("axes") or {}
    return " ".join(f"{key.rsplit('::', 1)[-1]}={value}" for key, value in axes.items())


class Reporter:
    """Prints to `stream` (stdout); names trials by their path below the output folder."""

    def __init__(self, out: Path, stream: TextIO | None = None):
        self.out = Path(out)
        self.stream = stream or sys.stdout
        self.ended: list[Ended] = []

    def name(self, trial: Path) -> str:
        try:
            return str(Path(trial).relative_to(self.out))
        except ValueError:
            return str(trial)

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, trial: Path, devices: str | None) -> None:
        where = f"  [GPU {devices}]" if devices else ""
        self.say(f"{_clock()}  start   {self.name(trial)}  {_axes(trial)}{where}".rstrip())

    def end(self, ended: Ended) -> None:
        self.ended.append(ended)
        name = self.name(ended.trial)
        if ended.status == Status.FAILED:
            record = Trial(Path(ended.trial)).record()
            self.say(
                f"{_clock()}  FAILED  {name}  exit {record.get('exit_code', ended.exit_code)} after "
                f"{duration(ended.seconds)}: {error_line(record.get('error_tail') or '')}\n"
                f"          its output: {Path(ended.trial) / OUTPUT_FILE}"
            )
        elif ended.status == Status.INTERRUPTED:
            signal = Trial(Path(ended.trial)).record().get("interrupted") or "a signal"
            self.say(f"{_clock()}  stopped {name}  by {signal} after {duration(ended.seconds)}; a rerun continues it")
        elif ended.status == "busy":
            self.say(f"{_clock()}  skip    {name}  another runner is running it")
        elif ended.status == "complete":
            self.say(f"{_clock()}  skip    {name}  already complete")
        else:
            self.say(f"{_clock()}  {ended.status:<7} {name}  {duration(ended.seconds)}")

    def summary(self, complete_before: int) -> str:
        """The closing table: every trial this run started, then the counts."""
        rows = sorted((self.name(e.trial), e.status, duration(e.seconds), str(e.exit_code)) for e in self.ended)
        counts = Counter(e.status for e in self.ended)
        if complete_before:
            counts["complete before"] = complete_before
        lines = []
        if rows:
            headers = ("trial", "status", "time", "exit")
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
            lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
            lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines.append(", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing to run")
        return "\n".join(lines)
