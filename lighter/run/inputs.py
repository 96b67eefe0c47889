"""A recorded run as the input of a command: `lighter test|validate|predict RUN_DIR` (and `lighter resume RUN_DIR`,
which `lighter.engine.resume` executes).

- `stage_inputs(stage, run_dir)` is the recorded config and the checkpoint a test, validate or predict uses: the
  best one its ModelCheckpoint tracked, else `last.ckpt`, else the newest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lighter.errors import ConfigError
from lighter.run.checkpoint_io import read_checkpoint
from lighter.run.continuation import (
    RUN_DIR_HINT,
    checkpoints,
    newest_checkpoint,
)
from lighter.run.files import CONFIG_FILE, read_record

LAST = "last.ckpt"


def recorded_run(run_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """The run directory (absolute) and its record; ConfigError naming what is missing if it is not a run."""
    folder = Path(run_dir).absolute()
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a run directory: it does not exist", suggestion=RUN_DIR_HINT)
    record = read_record(folder)
    if record is None:
        raise ConfigError(f"{folder} is not a run directory: it holds no run.yaml", suggestion=RUN_DIR_HINT)
    if not (folder / CONFIG_FILE).is_file():
        raise ConfigError(
            f"the run directory {folder} has no {CONFIG_FILE}, so its config is unknown",
            suggestion=f"Restore {CONFIG_FILE} there, or run a config file instead of the directory.",
        )
    return folder, record


def best_checkpoint(run_dir: Path, record: dict[str, Any], stage: str) -> Path:
    """The best checkpoint a ModelCheckpoint with a `monitor` tracked, else `last.ckpt`, else the newest."""
    newest = newest_checkpoint(run_dir, record, purpose=f"{stage} with")
    for state in (read_checkpoint(newest).get("callbacks") or {}).values():
        # Without a `monitor`, Lightning's "best" is merely the latest top-k file: no best at all.
        best = state.get("best_model_path") if isinstance(state, dict) and state.get("monitor") else None
        if best and Path(best).is_file():
            return Path(best)
    lasts = [p for p in checkpoints(run_dir, record, warn=False) if p.name == LAST]
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
    return folder, folder / CONFIG_FILE, best_checkpoint(folder, record, stage)
