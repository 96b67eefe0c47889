"""Measuring child processes: wall time, peak memory, interleaved rounds, medians and tables."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
# One intra-op thread for every child: on a shared 2-core machine a second thread mostly fights other processes.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TIME = "/usr/bin/time" if Path("/usr/bin/time").is_file() else None  # GNU time, for each child's own peak memory


class BenchmarkError(RuntimeError):
    """A child process failed; the message holds its command and the end of its output."""


@dataclass(frozen=True)
class Measured:
    wall_s: float  # from just before the fork to the exit
    max_rss_mib: float  # the child's peak resident memory
    launched_at: float  # time.time() just before the fork, for comparing with times the child writes
    output: str


def lighter_command() -> list[str]:
    """The `lighter` console script of this interpreter's environment, as a user runs it."""
    script = BIN / "lighter"
    return [str(script)] if script.exists() else [PYTHON, "-m", "lighter"]


def run_process(command: Sequence[str], cwd: Path = REPO) -> Measured:
    """Run `command` to completion; raise `BenchmarkError` if it fails."""
    with tempfile.TemporaryDirectory(prefix="bench-proc-") as tmp:
        rss_file = Path(tmp) / "maxrss"
        # Linux keeps a process's peak RSS across exec, so a child forked from a big parent reports the
        # parent's size; GNU time, itself tiny, reports its child's own peak. Without it, wait4 is the fallback.
        wrapped = [TIME, "-f", "%M", "-o", str(rss_file), *command] if TIME else list(command)
        with open(Path(tmp) / "output", "w+b") as out:
            launched_at = time.time()
            start = time.perf_counter()
            proc = subprocess.Popen(wrapped, stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=cwd)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            output = out.read().decode(errors="replace")
        max_rss_kib = int(rss_file.read_text().split()[-1]) if TIME and rss_file.is_file() else usage.ru_maxrss
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-30:])
        raise BenchmarkError(f"{' '.join(map(str, command))} exited with {proc.returncode}:\n{tail}")
    return Measured(wall, max_rss_kib / 1024, launched_at, output)


def interleaved(names: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, name) with the order rotated each round, so slow spells of a shared machine hit every name alike."""
    for r in range(rounds):
        shift = r % len(names)
        for name in [*names[shift:], *names[:shift]]:
            yield r, name


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, so printed figures paste straight into the README."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def save(result: object, path: Path | None) -> None:
    """Write a suite's figures as JSON for run.py (nothing without a path)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, default=str))
