"""The step-overhead cases, defined once: the runner passes these values to all three ways of training."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One experiment: the lighter config, and the names it uses from `workload` for the other two ways."""

    config: Path
    model: str  # a class in workload/models.py
    data: str  # a function in workload/data.py
    epochs: int
    quick_epochs: int
    batch_size: int
    lr: float = 0.001
    seed: int = 0
    num_classes: int = 10
    log_every_n_steps: int = 50  # Lightning's default, copied by the plain loop


CASES: dict[str, Case] = {
    # Overhead-dominated: ~57 tiny steps an epoch, so per-step framework work is most of the time.
    "digits-mlp": Case(HERE / "configs/digits_mlp.yaml", "MLP", "digits", epochs=20, quick_epochs=2, batch_size=32),
    # Compute-dominated: convolutions on 32x32 inputs take far longer than the framework's per-step work.
    "cnn": Case(HERE / "configs/cnn.yaml", "CNN", "synthetic", epochs=5, quick_epochs=1, batch_size=32),
}


def lighter_overrides(case: Case, epochs: int, timeline: Path, save_dir: Path) -> list[str]:
    """The `key::path=value` overrides that make the config run `case` like the other two ways."""
    values = dict(epochs=epochs, batch_size=case.batch_size, lr=case.lr, timeline=timeline, save_dir=save_dir)
    return [f"vars::{key}={value}" for key, value in values.items()] + [f"seed={case.seed}"]


def script_args(case_name: str, epochs: int, timeline: Path, save_dir: Path) -> list[str]:
    """The arguments of `handwritten.py` and `plain.py` for the same run."""
    return [case_name, "--epochs", str(epochs), "--timeline", str(timeline), "--save-dir", str(save_dir)]


def parse_script_args(argv: list[str] | None, description: str | None) -> tuple[argparse.Namespace, Case]:
    """What `script_args` wrote, read back by `handwritten.py` and `plain.py`, with the case it names."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--timeline", required=True)
    parser.add_argument("--save-dir", required=True)
    args = parser.parse_args(argv)
    return args, CASES[args.case]
