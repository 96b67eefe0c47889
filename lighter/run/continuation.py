"""What a run directory needs next: a fresh run, a resume from its newest checkpoint, or a restart. One decision for
`lighter resume`, SLURM requeue and sweep attempts, and the one place that records a resume in `run.yaml`.

| the directory holds                               | `lighter resume`     | SLURM requeue | sweep attempt           |
|---------------------------------------------------|----------------------|---------------|-------------------------|
| no run.yaml                                       | error: not a run     | fresh         | fresh; restart if files |
| a run whose process still runs                    | error: still running | resume        | resume                  |
| an interrupted run (or one whose process is gone) | resume               | resume        | resume; restart if the  |
|                                                   |                      |               | config changed since    |
| a finished or failed run                          | resume               | resume        | restart                 |
| no checkpoint of the run                          | error: none          | fresh         | restart                 |

A run's checkpoints are those in its checkpoint folders: `checkpoints/` or the `ModelCheckpoint(dirpath=...)` folders
`run.yaml` records under `checkpoint_dirs` (where only files stamped with this run count), and Lightning's HPC
checkpoints in the run directory. The newest is the one furthest into training.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from lighter.errors import ConfigError
from lighter.names import Status
from lighter.run.checkpoint_io import read_checkpoint, trusted
from lighter.run.files import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    RUN_DIR_KEY,
    RUN_FILE,
    dump,
    now,
    process_rank,
    read_record,
    write_atomic,
)
from lighter.run.status import alive, run_status, this_process

RUN_DIR_HINT = "Name a directory that `lighter fit` wrote; it holds run.yaml and config.yaml."


class Caller(str, Enum):
    """Who asks: the decision differs in what it may assume about the run."""

    RESUME = "resume"  # `lighter resume RUN_DIR`: the user named this run to continue
    REQUEUE = "requeue"  # SLURM requeued the job that recorded this run: it is ours, and it stopped
    SWEEP = "sweep"  # a sweep attempt at a trial, under the trial's lock: no other process runs it


class Continuation(str, Enum):
    FRESH = "fresh"  # nothing ran here: start the run
    RESUME = "resume"  # continue from the newest checkpoint, in the same directory
    RESTART = "restart"  # start again: what the earlier attempt left is not continued


@dataclass(frozen=True)
class Decision:
    action: Continuation
    run_dir: Path
    record: dict[str, Any] | None = None
    checkpoints: list[Path] = field(default_factory=list)

    @functools.cached_property
    def newest(self) -> Path:
        """The checkpoint furthest into training (most steps; the latest written among equals)."""
        return max(self.checkpoints, key=_progress)


def checkpoints(run_dir: Path, record: dict[str, Any], *, warn: bool = True) -> list[Path]:
    """Every readable checkpoint this run wrote (see the module's docstring).

    An unreadable file (empty, cut off, corrupt) is skipped with a warning naming it, unless nothing readable is
    left: then its error is raised, so one bad file never blocks a run that has good ones.
    """
    readable: list[Path] = []
    problems: list[ConfigError] = []
    for path in _written(run_dir, record):
        try:
            read_checkpoint(path)
            readable.append(path)
        except ConfigError as err:
            problems.append(err)
    if problems and not readable:
        raise problems[0]
    for err in problems if warn else []:
        print(f"lighter: warning: skipped {err.message}", file=sys.stderr)
    return readable


def _written(run_dir: Path, record: dict[str, Any]) -> list[Path]:
    found: list[Path] = []
    for folder in checkpoint_dirs(run_dir, record):
        own = folder.resolve().is_relative_to(run_dir.resolve())
        for path in sorted(folder.glob("*.ckpt")) if folder.is_dir() else []:
            if own or _stamp(path) == str(run_dir):
                found.append(path)
    found += sorted(run_dir.glob("hpc_ckpt_*.ckpt"))
    return found


def checkpoint_dirs(run_dir: Path, record: dict[str, Any]) -> list[Path]:
    return [Path(f) for f in record.get("checkpoint_dirs") or [run_dir / CHECKPOINTS_DIR]]


def _stamp(path: Path) -> str | None:
    try:
        return read_checkpoint(path).get(RUN_DIR_KEY)
    except ConfigError:
        return None


def _progress(path: Path) -> tuple[int, float]:
    return int(read_checkpoint(path).get("global_step", 0)), path.stat().st_mtime


def newest_checkpoint(run_dir: Path, record: dict[str, Any], *, purpose: str = "resume from") -> Path:
    """The run's newest checkpoint; ConfigError naming the folders looked in when it has none."""
    decision = Decision(Continuation.RESUME, run_dir, record, checkpoints(run_dir, record))
    if not decision.checkpoints:
        raise _no_checkpoint(run_dir, record, purpose)
    return decision.newest


def _no_checkpoint(run_dir: Path, record: dict[str, Any], purpose: str = "resume from") -> ConfigError:
    folders = checkpoint_dirs(run_dir, record)
    where = ", ".join(str(f) for f in folders)
    others = sum(len(list(f.glob("*.ckpt"))) for f in folders if f.is_dir())
    why = f"the {others} .ckpt files in {where} were written by other runs" if others else f"no .ckpt file in {where}"
    return ConfigError(
        f"the run {run_dir} has no checkpoint to {purpose}: {why}",
        suggestion=(
            "A run saves one at each epoch end (ModelCheckpoint) and when SIGINT or SIGTERM stops it. "
            f"Start it again with `lighter fit {run_dir / CONFIG_FILE}`."
        ),
    )


def decide(
    run_dir: str | os.PathLike, caller: Caller, *, config_changed: bool = False, owned: Collection[str] = ()
) -> Decision:
    """What `run_dir` needs now, for `caller` (the table above); `lighter resume`'s refusals are ConfigErrors.

    `config_changed`: the config to run is not the one the recorded run started with (a sweep's edited trial): its
    checkpoints belong to another experiment. `owned`: files in the directory that are not the run's (a sweep's own).
    """
    folder = Path(run_dir).absolute()
    record = read_record(folder)
    if record is None:
        if caller is Caller.RESUME:
            why = "it does not exist" if not folder.is_dir() else f"it holds no {RUN_FILE}"
            raise ConfigError(f"{folder} is not a run directory: {why}", suggestion=RUN_DIR_HINT)
        leftovers = folder.is_dir() and any(p.name not in owned for p in folder.iterdir())
        return Decision(Continuation.RESTART if leftovers else Continuation.FRESH, folder)
    if caller is Caller.RESUME:
        _refuse_what_cannot_resume(folder, record)
    try:
        found = checkpoints(folder, record)
    except ConfigError:  # none readable: `lighter resume` says which file; a requeue or a sweep starts again
        if caller is Caller.RESUME:
            raise
        found = []
    if not found:
        if caller is Caller.RESUME:
            raise _no_checkpoint(folder, record)
        return Decision(Continuation.FRESH if caller is Caller.REQUEUE else Continuation.RESTART, folder, record)
    # Under the trial's lock a `running` record's process is gone, wherever it ran.
    stopped = run_status(record) in (Status.INTERRUPTED, Status.RUNNING)
    if caller is Caller.SWEEP and (not stopped or config_changed):
        return Decision(Continuation.RESTART, folder, record, found)
    return Decision(Continuation.RESUME, folder, record, found)


def _refuse_what_cannot_resume(folder: Path, record: dict[str, Any]) -> None:
    if record.get("stage", "fit") != "fit":
        raise ConfigError(
            f"the run {folder} was a `lighter {record['stage']}`; only a fit can be resumed",
            suggestion=f"Run it again with `lighter {record['stage']} {folder}`.",
        )
    if not (folder / CONFIG_FILE).is_file():
        raise ConfigError(
            f"the run directory {folder} has no {CONFIG_FILE}, so its config is unknown",
            suggestion=f"Restore {CONFIG_FILE} there, or run a config file instead of the directory.",
        )
    if record.get("status") == Status.RUNNING and alive(record):
        # A second writer would interleave two fits in one directory.
        raise ConfigError(
            f"the run {folder} is still running (process {record['pid']} on {record['host']})",
            suggestion="Wait for it to end, or stop it first (Ctrl-C or `kill PID` saves a checkpoint), then resume.",
        )


def resume_from(experiment: Any, decision: Decision, recorder: Any) -> Path:
    """Point the experiment's fit at the decision's newest checkpoint and record the resume: `run.yaml` goes back
    to `running` with an entry under `resumes` (rank 0). Returns the checkpoint."""
    checkpoint = decision.newest
    experiment.args["ckpt_path"] = str(checkpoint)
    experiment.args.setdefault("weights_only", not trusted())  # as every checkpoint lighter loads
    recorder.ckpt_path = str(checkpoint)
    if process_rank() == 0:
        _record_resume(decision.run_dir, decision.record or {}, experiment, recorder.command, checkpoint)
    return checkpoint


def _record_resume(folder: Path, record: dict[str, Any], experiment: Any, command: str, checkpoint: Path) -> None:
    # The recorder's command: secrets typed as overrides already scrubbed, as in the record's own `command`.
    entry = {"started": now(), "command": command, "checkpoint": str(checkpoint)}
    entry["after"] = {k: record[k] for k in ("status", "ended", "interrupted", "error") if k in record}
    resumes = [*(record.get("resumes") or []), entry]
    config_text = dump(experiment.secrets.mask(experiment.config))
    config_path = folder / CONFIG_FILE
    if config_path.read_text() != config_text:  # keep the config each part of the run trained with
        os.replace(config_path, folder / f"config.before-resume-{len(resumes)}.yaml")
        write_atomic(config_path, config_text)
    fresh = {k: v for k, v in record.items() if k not in ("interrupted", "error", "metrics")}
    fresh.update(status=Status.RUNNING.value, ended=None, resumes=resumes, **this_process())
    write_atomic(folder / RUN_FILE, dump(fresh))
