"""Record what ran: the runnable config, the command, versions, seed and git state, in the run's directory.

The directory is the logger's (`trainer.log_dir`), or `runs/<stage>/<timestamp>` without a logger. Rank 0
writes; every rank agrees on the directory. A directory that already holds a recorded run is never reused.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from lighter.config.errors import ConfigError
from lighter.config.loader import dump_yaml

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.yaml"
CHECKPOINT_CONFIG_FILE = "checkpoint_config.yaml"  # the config that trained the checkpoint a run loads
CHECKPOINT_KEY = "config"  # under the checkpoint's `hyper_parameters`
_VERSIONED = ("torch", "pytorch-lightning", "torchmetrics", "monai", "lighter")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_state(folder: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the checkout containing `folder`, or None outside git."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit, "dirty": dirty, "folder": str(folder)}


class RunRecorder(pl.Callback):
    """Writes `config.yaml` and `run.yaml` at setup and puts the config into every checkpoint."""

    def __init__(
        self, config: dict[str, Any], stage: str, command: str, seed: Any, source: Path, ckpt_path: Any = None
    ):
        self.config = config
        self.ckpt_path = ckpt_path
        self.stage = stage
        self.command = command
        self.seed = seed
        self.source = source
        self.run_dir: Path | None = None

    def _choose_dir(self, trainer: pl.Trainer) -> Path:
        if trainer.loggers and trainer.log_dir is not None:
            return Path(trainer.log_dir)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / self.stage / stamp
        candidate, n = base, 0
        while candidate.exists():
            n += 1
            candidate = base.with_name(f"{stamp}-{n}")
        return candidate

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.run_dir is not None:
            return
        # Every rank takes part in the same broadcasts (`trainer.log_dir` makes one), in the same order.
        run_dir = Path(trainer.strategy.broadcast(str(self._choose_dir(trainer))))
        taken = trainer.strategy.broadcast((run_dir / CONFIG_FILE).exists())
        if taken:
            raise ConfigError(
                f"the run directory {run_dir} already holds a recorded run, and lighter never overwrites one",
                key="trainer::logger",
                suggestion="Let the logger pick a new version (leave `version` unset) or remove that directory.",
            )
        self.run_dir = run_dir
        if trainer.is_global_zero:
            run_dir.mkdir(parents=True, exist_ok=True)
            record = {
                "command": self.command,
                "stage": self.stage,
                "cwd": str(Path.cwd()),
                "started": dt.datetime.now().isoformat(timespec="seconds"),
                "seed": self.seed,
                "versions": versions(),
                "git": git_state(self.source),
            }
            (run_dir / CONFIG_FILE).write_text(dump_yaml(self.config))
            trained_with = self._checkpoint_config()
            if trained_with is not None:
                record["checkpoint"] = str(Path(self.ckpt_path).resolve())
                (run_dir / CHECKPOINT_CONFIG_FILE).write_text(dump_yaml(trained_with))
            (run_dir / RUN_FILE).write_text(dump_yaml(record))

    def _checkpoint_config(self) -> dict[str, Any] | None:
        """The config that trained the checkpoint this run starts from, if it carries one."""
        if not isinstance(self.ckpt_path, str) or not Path(self.ckpt_path).is_file():
            return None
        import torch

        checkpoint = torch.load(self.ckpt_path, map_location="cpu", weights_only=False, mmap=True)
        return checkpoint.get("hyper_parameters", {}).get(CHECKPOINT_KEY)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint.setdefault("hyper_parameters", {})[CHECKPOINT_KEY] = self.config
