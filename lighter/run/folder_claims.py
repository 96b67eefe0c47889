"""A checkpoint folder outside the run directory (`ModelCheckpoint(dirpath=...)`) belongs to one fit.

Two fits writing `best.ckpt` and `last.ckpt` into one folder overwrite each other's files, and each run then reports
the other's checkpoint as its own. So the first fit to write there claims the folder with a marker file naming its
run directory (created exclusively: of two fits started at once, one wins), and a fit of any other run is refused
before it trains, as long as the marker stays: the run it names is running, or recorded, or was deleted with its
checkpoints left behind. The same run (`lighter resume`, a SLURM requeue, a sweep's retry) writes there again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lighter.errors import ConfigError
from lighter.run.files import CHECKPOINT_FOLDER_OWNER, RUN_FILE, create_exclusive, dump, load


def configured(trainer: Any, components: dict[int, str]) -> list[tuple[str, Path]]:
    """(config key of the callback, absolute folder) of every ModelCheckpoint given a `dirpath`."""
    from pytorch_lightning.callbacks import ModelCheckpoint  # lazy: `lighter --help` imports no Lightning

    return [
        (components.get(id(cb), "trainer::callbacks"), Path(cb.dirpath).absolute())
        for cb in trainer.callbacks
        if isinstance(cb, ModelCheckpoint) and cb.dirpath is not None
    ]


def owner(folder: Path) -> Path | None:
    """The run directory that claimed `folder`, if one did."""
    data = load(folder / CHECKPOINT_FOLDER_OWNER)
    return Path(data["run_dir"]) if isinstance(data, dict) and data.get("run_dir") else None


def check_free(folder: Path, run_dir: Path | None, *, key: str, location: Any = None) -> None:
    """ConfigError if a run other than `run_dir` (None: a run not yet created) claimed `folder`."""
    other = owner(folder)
    if other is not None and other != run_dir:
        raise _taken(folder, other, key=key, location=location)


def claim(folder: Path, run_dir: Path, *, key: str) -> None:
    """Claim `folder` for `run_dir`, unless it is already its own; ConfigError if another run got there first."""
    folder.mkdir(parents=True, exist_ok=True)
    if not create_exclusive(folder / CHECKPOINT_FOLDER_OWNER, dump({"run_dir": str(run_dir)})):
        check_free(folder, run_dir, key=key)


def _taken(folder: Path, other: Path, *, key: str, location: Any) -> ConfigError:
    if (other / RUN_FILE).is_file():
        whose = f"the run {other}"
        fix = "Leave out `dirpath` (checkpoints then go to <run dir>/checkpoints), or name a folder of this run's own."
    else:
        whose = f"the run {other}, whose directory no longer exists"
        fix = (
            "Leave out `dirpath` (checkpoints then go to <run dir>/checkpoints), or name a folder of this run's own; "
            f"or, if that run's checkpoints there are no longer wanted, delete {folder / CHECKPOINT_FOLDER_OWNER}."
        )
    return ConfigError(
        f"the checkpoint folder {folder} belongs to {whose}; two runs writing there overwrite each other's "
        "best.ckpt and last.ckpt",
        key=f"{key}::dirpath",
        location=location,
        suggestion=fix,
    )
