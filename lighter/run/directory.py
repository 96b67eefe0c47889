"""Choose and claim a run's directory before any logger, checkpoint or tracker has written a byte.

Where it goes, in this order:
1. the directory named with `--run-dir DIR` (`lighter.engine.stage.run(..., run_dir=DIR)`);
2. the version folder of a CSV or TensorBoard logger listed first (`save_dir/name/version_N`), as Lightning names it;
3. `<trainer.default_root_dir>/runs/<stage>/<YYYYmmdd-HHMMSS>` (with `-1`, `-2`... on a clash) otherwise, e.g. for
   W&B, MLflow or Comet, which keep their own stores.

A directory is claimed by creating its `run.yaml` exclusively (or, for a fresh one, by creating the directory
itself), so two runs started at once never share one. A directory is free when it holds no `run.yaml`, no
`metrics.csv` and no checkpoint: files a sweep put there beforehand (`config.yaml`, `trial.yaml`) don't block it.
A run that failed before it wrote any result does not block a later one either; its record is kept in the new
`run.yaml` under `attempts`.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from lighter.errors import ConfigError
from lighter.names import Status
from lighter.run.files import (
    CHECKPOINTS_DIR,
    METRICS_FILE,
    RUN_FILE,
    create_exclusive,
    dump,
    read_record,
)

RUN_DIR_ENV = "LIGHTER_RUN_DIR"  # how processes that Lightning launches for DDP learn rank 0's directory
RUNS_FOLDER = "runs"


def _has_checkpoints(run_dir: Path) -> bool:
    folder = run_dir / CHECKPOINTS_DIR
    return folder.is_dir() and any(folder.iterdir())


def is_free(run_dir: Path) -> str | None:
    """None if a new run may use `run_dir`; else why not."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    has_results = (run_dir / METRICS_FILE).exists() or _has_checkpoints(run_dir)
    if record is not None and not (_failed_before_results(record) and not has_results):
        status = record.get("status", "unknown")
        return f"already holds a recorded run (status: {status}), and lighter never overwrites one"
    if record is None and has_results:
        return "holds metrics or checkpoints of a run lighter did not record, and lighter never overwrites them"
    return None


def _failed_before_results(record: dict[str, Any]) -> bool:
    return record.get("status") == Status.FAILED


def versioned_logger(trainer: Any) -> Any:
    """The first logger if it keeps one folder per run (CSV, TensorBoard), else None."""
    from lightning_fabric.loggers import CSVLogger as FabricCSV  # lazy: Lightning, not for show/status
    from lightning_fabric.loggers import TensorBoardLogger as FabricTB  # lazy: Lightning, not for show/status
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger  # lazy: Lightning, not for show/status

    first = trainer.loggers[0] if trainer.loggers else None
    if isinstance(first, (CSVLogger, TensorBoardLogger, FabricCSV, FabricTB)) and "://" not in str(first.root_dir):
        return first
    return None


def _version_folder(logger: Any, version: int | str) -> Path:
    return Path(logger.root_dir) / (version if isinstance(version, str) else f"version_{version}")


def _claim(run_dir: Path, record: dict[str, Any], key: str | None) -> None:
    """Create `run_dir`'s `run.yaml`, refusing a directory that holds a run; writes nothing when it refuses."""
    reason = is_free(run_dir)
    previous = read_record(run_dir)
    if reason is None and previous is not None:
        # Take the failed record over by renaming it: of two runs racing for it, only one rename succeeds.
        taken = run_dir / f".{RUN_FILE}.{os.getpid()}.attempt"
        try:
            os.rename(run_dir / RUN_FILE, taken)
        except FileNotFoundError:
            reason = "was claimed by another run just now"
        else:
            record = {**record, "attempts": [*previous.pop("attempts", []), previous]}
    if reason is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        claimed = create_exclusive(run_dir / RUN_FILE, dump(record))
        if previous is not None:
            taken.unlink(missing_ok=True)
        if claimed:
            return
        reason = "was claimed by another run just now"
    raise ConfigError(
        f"the run directory {run_dir} {reason}",
        key=key,
        suggestion=(
            f"Name another directory, continue that run with `lighter resume {run_dir}`, or move it away."
            if key is None
            else "Let the logger pick a new version (leave `version` unset), or name another version."
        ),
    )


def _fresh(parent: Path, names: Any) -> Path:
    """Create the first of `names` under `parent` that does not exist yet: mkdir is atomic, so racing runs differ."""
    parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        try:
            (parent / name).mkdir()
            return parent / name
        except FileExistsError:
            continue
    raise AssertionError("unreachable: names is unbounded")


def log_into(trainer: Any, run_dir: Path) -> None:
    """Make a first CSV or TensorBoard logger write into `run_dir` (a named directory, or a resumed run's)."""
    logger = versioned_logger(trainer)
    if logger is None or _version_folder(logger, logger._version or 0) == run_dir:
        return
    for attr in ("_root_dir", "_save_dir"):
        if hasattr(logger, attr):
            setattr(logger, attr, str(run_dir.parent))
    logger._name = ""
    logger._version = run_dir.name
    # `_version_folder` mirrors Lightning's layout; if a logger lays its folders out otherwise, say so at once.
    if Path(logger.log_dir).parts[: len(run_dir.parts)] != run_dir.parts:
        raise RuntimeError(f"{type(logger).__name__} writes to {logger.log_dir}, not into the run directory {run_dir}")


def claim_run_dir(trainer: Any, stage: str, record: dict[str, Any], named: str | os.PathLike | None = None) -> Path:
    """Pick this run's directory, claim it with `record` as its `run.yaml`, and return it (rank 0 only)."""
    if named is not None:
        run_dir = Path(named).absolute()
        _claim(run_dir, record, key=None)
        log_into(trainer, run_dir)
        return run_dir
    logger = versioned_logger(trainer)
    if logger is not None and logger._version is not None:
        run_dir = _version_folder(logger, logger._version).absolute()
        _claim(run_dir, record, key="trainer::logger::version")
        return run_dir
    if logger is not None:
        start = logger._get_next_version()
        run_dir = _fresh(Path(logger.root_dir), (f"version_{n}" for n in _count(start)))
        logger._version = int(run_dir.name.split("_")[1])
    else:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        parent = Path(trainer.default_root_dir) / RUNS_FOLDER / stage
        run_dir = _fresh(parent, (stamp if n == 0 else f"{stamp}-{n}" for n in _count(0)))
    run_dir = run_dir.absolute()
    create_exclusive(run_dir / RUN_FILE, dump(record))
    return run_dir


def _count(start: int):
    n = start
    while True:
        yield n
        n += 1
