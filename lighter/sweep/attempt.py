"""One trial, run in this process: take its lock, choose fit, resume or restart, run it, record the outcome.

A trial is complete when its run finished (`run.yaml`) and its `batch_log.csv` exists. Otherwise
(`lighter.run.continuation` decides, as for `lighter resume` and SLURM requeue):

| what the trial's directory holds                         | what runs                                        |
|----------------------------------------------------------|--------------------------------------------------|
| no run yet                                               | a fit into it (`lighter fit config.yaml          |
|                                                          | --run-dir TRIAL`)                                |
| a run killed or interrupted, with a checkpoint           | its resume (`lighter resume TRIAL`)              |
| a run that failed, or was killed before any checkpoint   | the earlier attempt's files move to              |
| (or finished without a batch log, or is stale and rerun) | `attempts/NNN/`, then a fit afresh               |

The run is the engine's, called in this process with the parsed config and a `BatchLog` callback object added
(unless the config has one), not the command line parsed again.
Each trial's output (stdout and stderr of its run) goes to `output.log` in its directory; a failure records its
exit code and the last lines of that output in `trial.yaml`. Runs in the process that a runner starts for the
trial (a forked warm worker, a fresh interpreter, or a SLURM job), never in the runner itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal as signals
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lighter.engine.exits import report
from lighter.engine.resume import resume
from lighter.engine.stage import add_callbacks, command_line, execute, instantiate, prepare
from lighter.errors import error_line
from lighter.names import Stage, Status
from lighter.quiet import hide_noise
from lighter.run.continuation import Caller, Continuation, decide
from lighter.run.directory import RUN_DIR_ENV
from lighter.run.files import load, now
from lighter.run.lifecycle import EXIT_CODES
from lighter.run.status import config_changed, trial_status
from lighter.sweep.lock import LOCK_FILE, TrialLock
from lighter.sweep.search_block import pruning_callback
from lighter.sweep.trial import BATCH_LOG_FILE, CONFIG_FILE, ERROR_TAIL_LINES, TRIAL_FILE, Trial
from lighter.sweep.trial import LOCK_FILE as RECORD_LOCK_FILE
from lighter.tracking.profiles import chosen

OUTPUT_FILE = "output.log"
ATTEMPTS_DIR = "attempts"
# What a restart leaves in place: the sweep's own files. Everything else belongs to the earlier attempt.
SWEEP_FILES = (CONFIG_FILE, TRIAL_FILE, LOCK_FILE, RECORD_LOCK_FILE, ATTEMPTS_DIR)
OWN_FILES = (*SWEEP_FILES, OUTPUT_FILE)  # what a trial's directory holds before its first run

# Exit codes of a trial's process beyond lighter's own (0 finished, 1 failed, 2 config error, 130, 143).
EXIT_BUSY = 75  # another runner holds the trial
EXIT_COMPLETE = 76  # nothing to do: the trial was already complete
INTERRUPT_CODES = {EXIT_CODES[name]: name for name in ("SIGINT", "SIGTERM")}


def plan(trial_dir: Path, *, rerun_stale: bool = False) -> str:
    """What the trial needs now: "complete", "fit", "resume" or "restart" (`lighter.run.continuation` decides
    between the last three, as it does for `lighter resume` and SLURM requeue)."""
    trial = Trial(Path(trial_dir))
    record, run = trial.record(), trial.run_record()
    status = trial_status(trial.dir, record, run)
    if status in (Status.DONE, Status.PRUNED, Status.STALE):
        return "restart" if status is Status.STALE and rerun_stale else "complete"
    # Resume only the config the run started with: after an edit, its checkpoint belongs to another experiment.
    decision = decide(trial.dir, Caller.SWEEP, config_changed=config_changed(record), owned=OWN_FILES)
    return "fit" if decision.action is Continuation.FRESH else decision.action.value


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


# ---- the run ------------------------------------------------------------------------------------------------------
def pruning_override(config: dict[str, Any], study: dict[str, Any] | None) -> list[str]:
    """A searched trial's pruning callback (`study` is its record's `study:`), as `trainer::callbacks=[..., it]`:
    a config entry, so its `monitor` is checked against the logged names before the run, as every monitor is.
    JSON is YAML, as overrides are."""
    if study is None:
        return []
    callbacks = (config.get("trainer") or {}).get("callbacks")
    if callbacks is None:
        callbacks = []
    elif isinstance(callbacks, dict):
        callbacks = [callbacks]
    elif not isinstance(callbacks, list):
        raise ValueError(
            f"trainer::callbacks is {callbacks!r}, which a searched trial cannot append its pruning callback to. "
            "Write the callbacks as a list."
        )
    target = pruning_callback(study)["_target_"]
    callbacks = [c for c in callbacks if not (isinstance(c, dict) and c.get("_target_") == target)]  # a rerun's
    return [f"trainer::callbacks={json.dumps([*callbacks, pruning_callback(study)])}"]


def run_engine(trial_dir: Path, action: str) -> int:
    """Fit the trial into its directory, or resume it, with a BatchLog added; lighter's exit code for how it went.

    Errors end it as they end `lighter` (`lighter.engine.exits`): a config error as `lighter: error: ...` (exit 2),
    any other as its traceback (exit 1), a signal's stop with 130 or 143.
    """
    from lighter.callbacks.batch_log import BatchLog  # lazy: Lightning; the sweep runner imports this, never torch

    hide_noise()
    trial_dir = Path(trial_dir).resolve()
    try:
        overrides = pruning_override(load(trial_dir / CONFIG_FILE) or {}, Trial(trial_dir).record().get("study"))
    except ValueError as err:
        print(error_line(str(err)), file=sys.stderr)
        return EXIT_CODES["config_error"]
    try:
        if action == "resume":
            resume(trial_dir, overrides, callbacks=[BatchLog()])
        else:
            configs = [str(trial_dir / CONFIG_FILE)]
            command = command_line(Stage.FIT.value, configs, overrides, profile=chosen(None), run_dir=trial_dir)
            experiment = prepare(Stage.FIT, configs, overrides, command=command)
            add_callbacks(instantiate(experiment), [BatchLog()])
            execute(experiment, run_dir=trial_dir)
    except BaseException as err:
        return report(err)
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
    lock is taken here, and EXIT_BUSY returned when another process holds it. In a trial of several SLURM tasks
    (`tasks_per_node: 2`: DDP through srun), task 0 does all that and tells the others what to run (`follow`).
    """
    trial = Trial(Path(trial_dir).resolve())
    if _task() is not None and _task() != 0:
        return follow(trial)
    with TrialLock(trial.dir, lock_fd) as held:
        if not held:
            _lead(trial, "busy")
            return EXIT_BUSY
        action = plan(trial.dir, rerun_stale=rerun_stale)
        if action == "complete":
            _lead(trial, action)
            return EXIT_COMPLETE
        if action == "restart":
            move_aside(trial.dir)
        attempt = int(trial.record().get("attempts") or 0) + 1
        # A resumed run goes on with the config it started with.
        trial.mark_running(run_hash=trial.record().get("run_hash") if action == "resume" else None)
        trial.update(action=action, attempts=attempt, interrupted=None)
        _lead(trial, action)
        code, tail = _run_attempt(trial.dir, action, attempt, trial.dir / OUTPUT_FILE)
        record(trial.dir, code, tail)
        return code


# ---- a trial of several SLURM tasks ---------------------------------------------------------------------------------
TASKS_KEY = "tasks"  # in trial.yaml: what task 0 decided for this job's attempt, for the other tasks
FOLLOW_TIMEOUT_S = 600.0


def _task() -> int | None:
    """This process's task in a SLURM job step of several tasks; None in a one-task job or outside SLURM."""
    if os.environ.get("SLURM_NTASKS", "1") in ("", "1") or not os.environ.get("SLURM_PROCID", "").isdigit():
        return None
    return int(os.environ["SLURM_PROCID"])


def _this_attempt() -> str:
    """The SLURM job and its restart count: the same in every task of one attempt, new after a requeue."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ.get("SLURM_JOB_ID", "")
    return f"{job}.{os.environ.get('SLURM_RESTART_COUNT', '0')}"


def _lead(trial: Trial, action: str) -> None:
    """Task 0 records what this attempt runs (after moving an earlier attempt aside): the other tasks wait for it."""
    if _task() is not None:
        trial.update(**{TASKS_KEY: {"attempt": _this_attempt(), "action": action}})


def follow(trial: Trial) -> int:
    """Another task than 0 of a multi-task trial: wait until task 0 recorded this attempt's action, then run the
    same (the engine makes it one DDP run: rank 0 writes the files). Task 0 alone holds the lock and records."""
    end = time.monotonic() + FOLLOW_TIMEOUT_S
    while (lead := trial.record().get(TASKS_KEY) or {}).get("attempt") != _this_attempt():
        if time.monotonic() > end:
            print(
                f"lighter: task 0 of {trial.name} recorded nothing for this attempt in {FOLLOW_TIMEOUT_S:g} s; "
                f"its output: {trial.dir / OUTPUT_FILE}",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)
    action = lead.get("action")
    if action == "busy":
        return EXIT_BUSY
    if action == "complete":
        return EXIT_COMPLETE
    os.environ[RUN_DIR_ENV] = str(trial.dir)  # as Lightning's own DDP processes learn rank 0's directory
    with output_to(trial.dir / OUTPUT_FILE):
        return run_engine(trial.dir, str(action))


def _run_attempt(trial_dir: Path, action: str, attempt: int, output: Path) -> tuple[int, str]:
    """Run lighter for the trial with its output going to `output`; its exit code and this attempt's last lines."""
    with output_to(output):
        shown = f"resume {trial_dir}" if action == "resume" else f"fit {trial_dir / CONFIG_FILE} --run-dir {trial_dir}"
        host = socket.gethostname()
        print(f"==== lighter sweep: attempt {attempt} ({action}) at {now()} on {host}: lighter {shown}")
        sys.stdout.flush()
        start = output.stat().st_size
        code = run_engine(trial_dir, action)
    return code, error_tail(output, start)


def record(trial_dir: Path, code: int, tail: str) -> str:
    """Write how a trial's process ended into `trial.yaml`; return "done", "pruned", "interrupted" or "failed"."""
    trial = Trial(Path(trial_dir))
    if code == 0 and trial.complete():
        pruned = (trial.run_record() or {}).get("pruned")
        if pruned:  # its study's pruner stopped it (lighter/sweep/pruning.py): finished early, on purpose
            trial.mark_pruned(str(pruned.get("reason") if isinstance(pruned, dict) else pruned))
            return Status.PRUNED.value
        trial.mark_done()
        return Status.DONE.value
    run = trial.run_record() or {}
    signal = INTERRUPT_CODES.get(code) or INTERRUPT_CODES.get(128 - code if code < 0 else 0)
    if run.get("status") == Status.INTERRUPTED or signal is not None:
        # Stopped, not broken: the trial stays to be run (resumed where it has a checkpoint).
        stopped_by = (run.get("interrupted") or {}).get("signal") or signal or "a signal"
        trial.mark_pending()
        trial.update(interrupted=stopped_by)
        return Status.INTERRUPTED.value
    if code == 0:
        tail = (tail + "\n" if tail else "") + f"the run ended without a finished run.yaml and a {BATCH_LOG_FILE}"
        code = 1
    if code < 0:
        tail = (tail + "\n" if tail else "") + f"killed by {signals.Signals(-code).name}"
    trial.mark_failed(code, tail)
    return Status.FAILED.value


def main(argv: list[str] | None = None) -> None:
    """`python -m lighter.sweep.attempt TRIAL_DIR [--rerun-stale]`: one trial in a fresh interpreter."""
    args = sys.argv[1:] if argv is None else argv
    raise SystemExit(run_trial(args[0], rerun_stale="--rerun-stale" in args[1:]))


if __name__ == "__main__":
    main()
