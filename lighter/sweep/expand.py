"""Expand a cascade into trial directories, idempotently.

Each run of `expand` regenerates every trial's `config.yaml` from the cascade as it is now, so an edit to a parent
`cfg.yaml` reaches every trial below it. A trial is known by its axis values: the same values keep their number,
new values get the next free numbers, and a trial whose values left the sweep stays on disk, untouched but for
`in_sweep: false` in its record. Nothing is ever deleted. Every leaf is read and checked before anything is written.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighter.config.loader import LoadedConfig, load_config, set_key
from lighter.sweep.axes import SWEEP_KEY, Axis, leaf_axes, product
from lighter.sweep.cascade import Leaf, SweepMode, find_leaves, select_leaves
from lighter.sweep.files import dump, load, write_atomic
from lighter.sweep.trial import RUN_FILE, TRIAL_FILE, Status, Trial, config_hash, trial_name

DEFAULT_OUT = Path("runs") / "sweeps"  # below the current directory
_TRIAL_DIR = re.compile(r"^trial_(\d{3,})$")


@dataclass
class LeafPlan:
    """A leaf read and checked: the config its trials share and the axes that vary."""

    leaf: Leaf
    loaded: LoadedConfig
    base: dict[str, Any]
    axes: list[Axis]


def runnable_base(loaded: LoadedConfig) -> dict[str, Any]:
    """The merged config as a trial runs it: no `sweep:` block, `project` absolute (file macros are inlined already).

    Same-file `%` macros stay as written: they are relative to the file itself, so the config runs from anywhere,
    and resolving them here would cost MONAI's import (seconds) in every expansion.
    """
    from lighter.config.build import find_project

    base = {k: v for k, v in loaded.data.items() if k != SWEEP_KEY}
    if base.get("project") is not None:
        base["project"] = str(find_project(loaded, base["project"]))
    return base


def plan(leaf: Leaf) -> LeafPlan:
    loaded = load_config([str(f) for f in leaf.files])
    axes = leaf_axes(loaded, leaf)
    return LeafPlan(leaf, loaded, runnable_base(loaded), axes)


def _key(axes: dict[str, Any]) -> str:
    return json.dumps(axes, sort_keys=True, default=str)


def _existing(leaf_dir: Path) -> dict[str, tuple[int, Trial, dict[str, Any]]]:
    """The trials already in `leaf_dir`, by their axis values."""
    found = {}
    if leaf_dir.is_dir():
        for child in leaf_dir.iterdir():
            match = _TRIAL_DIR.match(child.name)
            record = load(child / TRIAL_FILE) if match else None
            if isinstance(record, dict):
                found[_key(record.get("axes") or {})] = (int(match[1]), Trial(child), record)
    return found


def _write_config(trial: Trial, text: str, digest: str, record: dict[str, Any]) -> None:
    """Write the trial's config; keep the one a run started with (`config.<hash>.yaml`) before replacing it."""
    path = trial.config_path
    if record.get("config_hash") == digest and path.is_file():
        return
    old = record.get("config_hash")
    if old and path.is_file() and (trial.dir / RUN_FILE).exists():
        kept = trial.dir / f"config.{old}.yaml"
        if not kept.exists():
            write_atomic(kept, path.read_text())
    write_atomic(path, text)


def expand_leaf(plan: LeafPlan, out: Path) -> list[Trial]:
    """Write the leaf's trials under `out`; returns those in the sweep, in axis order."""
    leaf_dir = out / plan.leaf.name if plan.leaf.name else out
    existing = _existing(leaf_dir)
    next_number = max((n for n, _, _ in existing.values()), default=-1) + 1
    trials = []
    wanted = set()
    for axes in product(plan.axes):
        key = _key(axes)
        wanted.add(key)
        if key in existing:
            _, trial, record = existing[key]
        else:
            trial, record = Trial(leaf_dir / trial_name(next_number)), {}
            next_number += 1
            trial.dir.mkdir(parents=True, exist_ok=True)
        config = copy.deepcopy(plan.base)
        for path, value in axes.items():
            set_key(config, path, copy.deepcopy(value))
        text = dump(config)
        digest = config_hash(text)
        _write_config(trial, text, digest, record)
        fields = {
            "trial": trial.name,
            "leaf": plan.leaf.name,
            "mode": plan.leaf.mode.value,
            "axes": axes,
            "status": record.get("status", Status.PENDING.value),
            "in_sweep": True,
            "config_hash": digest,
        }
        if any(record.get(k) != v for k, v in fields.items()):
            trial.update(**fields)
        trials.append(trial)
    for key, (_, trial, record) in existing.items():
        if key not in wanted and record.get("in_sweep", True):
            trial.update(in_sweep=False)
    return trials


def expand(
    root: Path | str,
    out: Path | str | None = None,
    *,
    modes: list[str] | str | None = None,
    datasets: list[str] | str | None = None,
    select: str | None = None,
    mode: str | SweepMode | None = None,
) -> list[Trial]:
    """Expand the cascade at `root` into `out` (default `runs/sweeps` below the current directory).

    Returns the trials in the sweep now, leaf by leaf. Raises ConfigError, having written nothing, when any
    selected leaf breaks a rule.
    """
    out = Path(out).expanduser() if out is not None else Path.cwd() / DEFAULT_OUT
    leaves = select_leaves(find_leaves(root, mode=mode), modes=modes, datasets=datasets, select=select)
    plans = [plan(leaf) for leaf in leaves]
    out.mkdir(parents=True, exist_ok=True)
    return [trial for p in plans for trial in expand_leaf(p, out.resolve())]


def load_trials(out: Path | str) -> list[Trial]:
    """Every trial under `out`, in or out of the sweep, sorted by leaf then number."""
    out = Path(out)
    return [Trial(p.parent) for p in sorted(out.rglob(TRIAL_FILE)) if _TRIAL_DIR.match(p.parent.name)]
