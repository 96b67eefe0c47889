"""A recorded run as the input of a command: `lighter resume RUN_DIR` and `lighter test|validate|predict RUN_DIR`.

- `resume(run_dir, overrides)` continues the fit from its newest checkpoint, with its recorded config plus the
  overrides, in the same directory; `run.yaml` gets an entry under `resumes` for each.
- `stage_inputs(stage, run_dir)` is the recorded config and the checkpoint a test, validate or predict uses: the
  best one its ModelCheckpoint tracked, else `last.ckpt`, else the newest.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from lighter.config.errors import ConfigError
from lighter.run.checkpoint import read_checkpoint
from lighter.run.record import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    RUN_DIR_KEY,
    dump,
    now,
    read_record,
    write_atomic,
)

LAST = "last.ckpt"


def recorded_run(run_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """The run directory (absolute) and its record; ConfigError naming what is missing if it is not a run."""
    folder = Path(run_dir).absolute()
    if not folder.is_dir():
        raise ConfigError(
            f"{folder} is not a run directory: it does not exist",
            suggestion="Name a directory that `lighter fit` wrote; it holds run.yaml and config.yaml.",
        )
    record = read_record(folder)
    if record is None:
        raise ConfigError(
            f"{folder} is not a run directory: it holds no run.yaml",
            suggestion="Name a directory that `lighter fit` wrote; it holds run.yaml and config.yaml.",
        )
    if not (folder / CONFIG_FILE).is_file():
        raise ConfigError(
            f"the run directory {folder} has no {CONFIG_FILE}, so its config is unknown",
            suggestion=f"Restore {CONFIG_FILE} there, or run a config file instead of the directory.",
        )
    return folder, record


def checkpoints(run_dir: Path, record: dict[str, Any]) -> list[Path]:
    """Every checkpoint this run wrote: in its checkpoint folders (its own, or a configured `dirpath`, where only
    files stamped with this run count) and Lightning's HPC checkpoints in the run directory."""
    found: list[Path] = []
    folders = [Path(f) for f in record.get("checkpoint_dirs") or [run_dir / CHECKPOINTS_DIR]]
    for folder in folders:
        own = folder.resolve().is_relative_to(run_dir.resolve())
        for path in sorted(folder.glob("*.ckpt")) if folder.is_dir() else []:
            if own or _stamp(path) == str(run_dir):
                found.append(path)
    found += sorted(run_dir.glob("hpc_ckpt_*.ckpt"))
    return found


def _stamp(path: Path) -> str | None:
    try:
        return read_checkpoint(path).get(RUN_DIR_KEY)
    except ConfigError:
        return None


def _progress(path: Path) -> tuple[int, float]:
    return int(read_checkpoint(path).get("global_step", 0)), path.stat().st_mtime


def newest_checkpoint(run_dir: Path, record: dict[str, Any]) -> Path:
    """The checkpoint furthest into training (most steps; the latest written among equals)."""
    found = checkpoints(run_dir, record)
    if not found:
        where = ", ".join(str(f) for f in record.get("checkpoint_dirs") or [run_dir / CHECKPOINTS_DIR])
        raise ConfigError(
            f"the run {run_dir} has no checkpoint to resume from: no .ckpt file in {where}",
            suggestion=(
                "A run saves one at each epoch end (ModelCheckpoint) and when SIGINT or SIGTERM stops it. "
                f"Start it again with `lighter fit {run_dir / CONFIG_FILE}`."
            ),
        )
    return max(found, key=_progress)


def best_checkpoint(run_dir: Path, record: dict[str, Any]) -> Path:
    """The best checkpoint a ModelCheckpoint with a `monitor` tracked, else `last.ckpt`, else the newest."""
    newest = newest_checkpoint(run_dir, record)
    for state in (read_checkpoint(newest).get("callbacks") or {}).values():
        # Without a `monitor`, Lightning's "best" is merely the latest top-k file: no best at all.
        best = state.get("best_model_path") if isinstance(state, dict) and state.get("monitor") else None
        if best and Path(best).is_file():
            return Path(best)
    lasts = [p for p in checkpoints(run_dir, record) if p.name == LAST]
    return lasts[0] if lasts else newest


def stage_inputs(stage: str, run_dir: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(run directory, its config file, the checkpoint `stage` uses) for `lighter <stage> RUN_DIR`."""
    if stage == "fit":
        folder = Path(run_dir).absolute()
        again = (
            f"continue that run with `lighter resume {folder}`, or start it anew with "
            f"`lighter fit {folder / CONFIG_FILE}`"
            if read_record(folder) is not None
            else "name the YAML file(s) inside it"
        )
        raise ConfigError(
            f"`lighter fit` takes config files; {folder} is a directory", suggestion=again[0].upper() + again[1:] + "."
        )
    folder, record = recorded_run(run_dir)
    return folder, folder / CONFIG_FILE, best_checkpoint(folder, record)


def _reached_end(checkpoint: dict[str, Any], trainer: Any) -> str | None:
    """Why a fit from `checkpoint` under `trainer`'s limits would train nothing, or None."""
    epochs = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    # A checkpoint saved at an epoch's end (ModelCheckpoint's usual moment) counts it as processed, not yet completed.
    done_epochs = max(int(epochs.get("completed", 0)), int(epochs.get("processed", 0)))
    steps = int(checkpoint.get("global_step", 0))
    if trainer.max_steps not in (None, -1) and steps >= trainer.max_steps:
        return f"it has trained {steps} steps, and trainer::max_steps is {trainer.max_steps}"
    if trainer.max_epochs not in (None, -1) and done_epochs >= trainer.max_epochs:
        return f"it has trained {done_epochs} epochs, and trainer::max_epochs is {trainer.max_epochs}"
    return None


def resume(
    run_dir: str | os.PathLike, overrides: list[str] | dict[str, Any] | None = None, *, profile: str | None = None
) -> Any:
    """Continue a recorded fit in its own directory; returns what `Trainer.fit` returns (None).

    `profile` (else `LIGHTER_PROFILE`) restores the values the recorded config holds as `<profile NAME>` markers.
    """
    from lighter.run.lifecycle import recorder_of
    from lighter.run.record import process_rank
    from lighter.runner import execute, instantiate, prepare

    folder, record = recorded_run(run_dir)
    if record.get("stage", "fit") != "fit":
        raise ConfigError(
            f"the run {folder} was a `lighter {record['stage']}`; only a fit can be resumed",
            suggestion=f"Run it again with `lighter {record['stage']} {folder}`.",
        )
    _refuse_live(folder, record)
    checkpoint = newest_checkpoint(folder, record)
    words = [f"{k}={v}" for k, v in overrides.items()] if isinstance(overrides, dict) else list(overrides or [])
    experiment = prepare("fit", [str(folder / CONFIG_FILE)], overrides, profile=profile)
    experiment.command = shlex.join(["lighter", "resume", str(run_dir), *words])
    experiment = instantiate(experiment)
    state = read_checkpoint(checkpoint)
    why_done = _reached_end(state, experiment.trainer)
    if why_done is None and record.get("status") == "finished" and not words:
        why_done = "it finished, and no override asks for more"
    if why_done is not None:
        print(
            f"lighter: the run {folder} has already reached its end: {why_done}. Nothing to train.\n"
            f"  To train longer: lighter resume {shlex.quote(str(folder))} trainer::max_epochs=N",
        )
        return None
    experiment.args["ckpt_path"] = str(checkpoint)
    recorder_of(experiment.trainer).ckpt_path = str(checkpoint)
    if process_rank() == 0:
        _record_resume(folder, record, experiment, checkpoint)
    return execute(experiment, run_dir=folder, continuing=True)


def _refuse_live(folder: Path, record: dict[str, Any]) -> None:
    """A run still running on this machine must not get a second writer."""
    pid, host = record.get("pid"), record.get("host")
    if record.get("status") != "running" or host != os.uname().nodename or not isinstance(pid, int):
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # it died without recording its end (SIGKILL, power loss): resuming is what it needs
    except PermissionError:
        pass
    raise ConfigError(
        f"the run {folder} is still running (process {pid} on {host})",
        suggestion="Wait for it to end, or stop it first (Ctrl-C or `kill PID` saves a checkpoint), then resume.",
    )


def _record_resume(folder: Path, record: dict[str, Any], experiment: Any, checkpoint: Path) -> None:
    entry = {"started": now(), "command": experiment.command, "checkpoint": str(checkpoint)}
    entry["after"] = {k: record[k] for k in ("status", "ended", "interrupted", "error") if k in record}
    resumes = [*(record.get("resumes") or []), entry]
    config_text = dump(experiment.secrets.mask(experiment.config))
    config_path = folder / CONFIG_FILE
    if config_path.read_text() != config_text:  # keep the config each part of the run trained with
        os.replace(config_path, folder / f"config.before-resume-{len(resumes)}.yaml")
        write_atomic(config_path, config_text)
    fresh = {k: v for k, v in record.items() if k not in ("interrupted", "error", "metrics")}
    fresh.update(status="running", ended=None, pid=os.getpid(), host=os.uname().nodename, resumes=resumes)
    write_atomic(folder / "run.yaml", dump(fresh))
