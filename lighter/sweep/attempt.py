"""One trial, run in this process: take its lock, choose fit, resume or restart, run it, record the outcome.

A trial is complete when its run finished (`run.yaml`) and its `batch_log.csv` exists. Otherwise:

| what the trial's directory holds                         | what runs                                        |
|----------------------------------------------------------|--------------------------------------------------|
| no run yet                                               | `lighter fit config.yaml --run-dir TRIAL`        |
| a run killed or interrupted, with a checkpoint           | `lighter resume TRIAL`                           |
| a run that failed, or was killed before any checkpoint   | the earlier attempt's files move to              |
| (or finished without a batch log, or is stale and rerun) | `attempts/NNN/`, then `lighter fit` afresh       |

Each trial's output (stdout and stderr of its run) goes to `output.log` in its directory; a failure records its
exit code and the last lines of that output in `trial.yaml`. Runs in the process that a runner starts for the
trial (a forked warm worker, a fresh interpreter, or a SLURM job), never in the runner itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lighter.sweep.files import load
from lighter.sweep.lock import LOCK_FILE, TrialLock
from lighter.sweep.search import pruning_callback
from lighter.sweep.trial import BATCH_LOG_FILE, CONFIG_FILE, ERROR_TAIL_LINES, TRIAL_FILE, Status, Trial, status_of
from lighter.sweep.trial import LOCK_FILE as RECORD_LOCK_FILE

OUTPUT_FILE = "output.log"
ATTEMPTS_DIR = "attempts"
CHECKPOINTS_DIR = "checkpoints"
BATCH_LOG_TARGET = "lighter.callbacks.BatchLog"
# What a restart leaves in place: the sweep's own files. Everything else belongs to the earlier attempt.
SWEEP_FILES = (CONFIG_FILE, TRIAL_FILE, LOCK_FILE, RECORD_LOCK_FILE, ATTEMPTS_DIR)

# Exit codes of a trial's process beyond lighter's own (0 finished, 1 failed, 2 config error, 130, 143).
EXIT_BUSY = 75  # another runner holds the trial
EXIT_COMPLETE = 76  # nothing to do: the trial was already complete
INTERRUPT_CODES = {130: "SIGINT", 143: "SIGTERM"}


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _has_checkpoint(trial_dir: Path) -> bool:
    folder = Path(trial_dir) / CHECKPOINTS_DIR
    return folder.is_dir() and any(folder.rglob("*.ckpt"))


def plan(trial_dir: Path, *, rerun_stale: bool = False) -> str:
    """What the trial needs now: "complete", "fit", "resume" or "restart"."""
    trial = Trial(Path(trial_dir))
    record = trial.record()
    # The config expansion wrote last is not the one the trial's run started with.
    changed = status_of(record) is Status.STALE or record.get("run_hash") not in (None, record.get("config_hash"))
    if trial.complete():
        return "restart" if changed and rerun_stale else "complete"
    run = trial.run_record()
    if run is None:
        leftovers = [p for p in trial.dir.iterdir() if p.name not in SWEEP_FILES and p.name != OUTPUT_FILE]
        return "restart" if leftovers else "fit"
    # Resume only the config the run started with: after an edit, its checkpoint belongs to another experiment.
    if run.get("status") in ("running", "interrupted") and _has_checkpoint(trial.dir) and not changed:
        return "resume"
    return "restart"


def move_aside(trial_dir: Path) -> Path | None:
    """Move an earlier attempt's files into `attempts/NNN/` (a copy of config.yaml goes too); delete nothing."""
    trial_dir = Path(trial_dir)
    files = [p for p in trial_dir.iterdir() if p.name not in SWEEP_FILES]
    if not files:
        return None
    attempts = trial_dir / ATTEMPTS_DIR
    attempts.mkdir(exist_ok=True)
    n = 1 + max((int(p.name) for p in attempts.iterdir() if p.name.isdigit()), default=0)
    target = attempts / f"{n:03d}"
    target.mkdir()
    if (trial_dir / CONFIG_FILE).is_file():
        shutil.copy2(trial_dir / CONFIG_FILE, target / CONFIG_FILE)  # the config that attempt ran
    for path in files:
        os.replace(path, target / path.name)
    return target


# ---- the command ----------------------------------------------------------------------------------------------------
def batch_log_override(config: dict[str, Any], study: dict[str, Any] | None = None) -> list[str]:
    """`trainer::callbacks=[..., BatchLog]` unless the config has a BatchLog already, and a searched trial's pruning
    callback (`study` is its record's `study:`). JSON is YAML, as overrides are."""
    callbacks = (config.get("trainer") or {}).get("callbacks")
    if callbacks is None:
        callbacks = []
    elif isinstance(callbacks, dict):
        callbacks = [callbacks]
    elif not isinstance(callbacks, list):
        raise ValueError(
            f"trainer::callbacks is {callbacks!r}, which a sweep cannot append its {BATCH_LOG_TARGET} to. "
            f"Write the callbacks as a list, or add {{_target_: {BATCH_LOG_TARGET}}} to it yourself."
        )
    added = [{"_target_": BATCH_LOG_TARGET}]
    if any(isinstance(c, dict) and str(c.get("_target_", "")).endswith("BatchLog") for c in callbacks):
        added = []
    if study is not None:
        target = pruning_callback(study)["_target_"]
        callbacks = [c for c in callbacks if not (isinstance(c, dict) and c.get("_target_") == target)]  # a rerun's
        added.append(pruning_callback(study))
    return [f"trainer::callbacks={json.dumps([*callbacks, *added])}"] if added else []


def command(trial_dir: Path, action: str) -> list[str]:
    """The `lighter` arguments that run the trial: fit into its directory, or resume it."""
    trial_dir = Path(trial_dir).resolve()
    config = load(trial_dir / CONFIG_FILE) or {}
    extra = batch_log_override(config, Trial(trial_dir).record().get("study"))
    if action == "resume":
        return ["resume", str(trial_dir), *extra]
    return ["fit", str(trial_dir / CONFIG_FILE), "--run-dir", str(trial_dir), *extra]


def _lighter(argv: list[str]) -> int:
    """`lighter ARGV` in this process, as its exit code."""
    from lighter.cli import main

    try:
        main(argv)
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except KeyboardInterrupt:
        return 130
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (the file descriptors, so child processes' too) to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("a") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def error_tail(path: Path, start: int = 0, lines: int = ERROR_TAIL_LINES) -> str:
    """The last lines written to `path` from byte `start` on."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_trial(trial_dir: str | os.PathLike, *, rerun_stale: bool = False, lock_fd: int | None = None) -> int:
    """Run one trial to its end in this process; the exit code says how it went (see the table above).

    `lock_fd` is the trial's lock, already held (by the runner that started this process); without it the trial's
    lock is taken here, and EXIT_BUSY returned when another process holds it.
    """
    trial = Trial(Path(trial_dir).resolve())
    with TrialLock(trial.dir, lock_fd) as held:
        if not held:
            return EXIT_BUSY
        action = plan(trial.dir, rerun_stale=rerun_stale)
        if action == "complete":
            return EXIT_COMPLETE
        if action == "restart":
            move_aside(trial.dir)
        attempt = int(trial.record().get("attempts") or 0) + 1
        if action == "resume":
            run_hash = trial.record().get("run_hash")  # the run goes on with the config it started with
            trial.mark_running()
            trial.update(run_hash=run_hash)
        else:
            trial.mark_running()
        trial.update(action=action, attempts=attempt, interrupted=None)
        code, tail = _run_attempt(trial.dir, action, attempt, trial.dir / OUTPUT_FILE)
        record(trial.dir, code, tail)
        return code


def _run_attempt(trial_dir: Path, action: str, attempt: int, output: Path) -> tuple[int, str]:
    """Run lighter for the trial with its output going to `output`; its exit code and this attempt's last lines."""
    with output_to(output):
        try:
            argv = command(trial_dir, action)
        except ValueError as err:
            argv, problem = [], err
        shown = " ".join(argv[:4]) + (" ..." if len(argv) > 4 else "")
        host = socket.gethostname()
        print(f"==== lighter sweep: attempt {attempt} ({action}) at {now()} on {host}: lighter {shown}")
        sys.stdout.flush()
        start = output.stat().st_size
        if argv:
            code = _lighter(argv)
        else:
            print(f"lighter: error: {problem}", file=sys.stderr)
            code = 2
    return code, error_tail(output, start)


def record(trial_dir: Path, code: int, tail: str) -> str:
    """Write how a trial's process ended into `trial.yaml`; return "done", "interrupted" or "failed"."""
    trial = Trial(Path(trial_dir))
    if code == 0 and trial.complete():
        pruned = (trial.run_record() or {}).get("pruned")
        if pruned:  # its study's pruner stopped it (lighter/sweep/pruning.py): finished early, on purpose
            trial.mark_pruned(str(pruned.get("reason") if isinstance(pruned, dict) else pruned))
            return "pruned"
        trial.mark_done()
        return "done"
    run = trial.run_record() or {}
    signal = INTERRUPT_CODES.get(code) or INTERRUPT_CODES.get(128 - code if code < 0 else 0)
    if run.get("status") == "interrupted" or signal is not None:
        # Stopped, not broken: the trial stays to be run (resumed where it has a checkpoint).
        stopped_by = (run.get("interrupted") or {}).get("signal") or signal or "a signal"
        trial.mark_pending()
        trial.update(interrupted=stopped_by)
        return "interrupted"
    if code == 0:
        tail = (tail + "\n" if tail else "") + f"the run ended without a finished run.yaml and a {BATCH_LOG_FILE}"
        code = 1
    if code < 0:
        import signal as signals

        tail = (tail + "\n" if tail else "") + f"killed by {signals.Signals(-code).name}"
    trial.mark_failed(code, tail)
    return "failed"


def main(argv: list[str] | None = None) -> None:
    """`python -m lighter.sweep.attempt TRIAL_DIR [--rerun-stale]`: one trial in a fresh interpreter."""
    args = sys.argv[1:] if argv is None else argv
    raise SystemExit(run_trial(args[0], rerun_stale="--rerun-stale" in args[1:]))


if __name__ == "__main__":
    main()
