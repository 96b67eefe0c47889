"""Expand a cascade into trial directories, idempotently.

Each run of `expand` regenerates every trial's `config.yaml` from the cascade as it is now, so an edit to a parent
`cfg.yaml` reaches every trial below it. A trial is known by its axis values: the same values keep their number,
new values get the next free numbers, and a trial whose values left the sweep stays on disk, untouched but for
`in_sweep: false` in its record. Nothing is ever deleted. Every leaf is read and checked before anything is written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighter.config.build import find_project
from lighter.config.loader import LoadedConfig, load_config
from lighter.names import Status
from lighter.run.files import load, write_atomic
from lighter.sweep.axes import LAUNCHER_KEY, SWEEP_KEY, Axis, check_reachable, leaf_axes, product
from lighter.sweep.cascade import Leaf, SweepMode, find_leaves, select_leaves
from lighter.sweep.config_text import ConfigText, RecordText
from lighter.sweep.search_block import SEARCH_KEY, Search, read_search
from lighter.sweep.secrets import refuse_secrets
from lighter.sweep.trial import CONFIG_FILE, RUN_FILE, TRIAL_FILE, Trial, config_hash, trial_name

DEFAULT_OUT = Path("runs") / "sweeps"  # below the current directory
_TRIAL_DIR = re.compile(r"^trial_(\d{3,})$")


@dataclass
class LeafPlan:
    """A leaf read and checked: the config its trials share and the axes that vary."""

    leaf: Leaf
    loaded: LoadedConfig
    base: dict[str, Any]
    axes: list[Axis]
    search: Search | None = None  # a searched leaf: its trials come from the study as it runs (lighter/sweep/study.py)


def runnable_base(loaded: LoadedConfig) -> dict[str, Any]:
    """The merged config as a trial runs it: no `sweep:` or `launcher:` block, `project` absolute (file macros are
    inlined already).

    Same-file `%` macros stay as written: they are relative to the file itself, so the config runs from anywhere,
    and resolving them here would cost MONAI's import (seconds) in every expansion.
    """
    base = {k: v for k, v in loaded.data.items() if k not in (SWEEP_KEY, LAUNCHER_KEY, SEARCH_KEY)}
    if base.get("project") is not None:
        # Resolved once, next to the file, never from the cwd: a runner elsewhere must not make done trials stale.
        base["project"] = str(find_project(loaded, base["project"], cwd_fallback=False))
    return base


def plan(leaf: Leaf) -> LeafPlan:
    loaded = load_config([str(f) for f in leaf.files])
    search = read_search(loaded, leaf)
    axes = leaf_axes(loaded, leaf)
    base = runnable_base(loaded)
    check_reachable(loaded, leaf, base, axes)
    refuse_secrets(loaded, leaf, base, axes)
    return LeafPlan(leaf, loaded, base, axes, search)


def leaf_out(plan: LeafPlan, out: Path) -> Path:
    """Where the leaf's trials go below `out`."""
    return out / plan.leaf.name if plan.leaf.name else out


def searched_trials(leaf_dir: Path) -> list[tuple[Trial, dict[str, Any]]]:
    """A searched leaf's trials so far, by number (two may share their values: each is a trial of the study)."""
    found = []
    for child in sorted(leaf_dir.iterdir()) if leaf_dir.is_dir() else ():
        record = load(child / TRIAL_FILE) if _TRIAL_DIR.match(child.name) else None
        if isinstance(record, dict):
            found.append((Trial(child), record))
    return found


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
            write_atomic(kept, path.read_text(), durable=False)
    write_atomic(path, text, durable=False)


def create_trial(trial: Trial, text: str, record_text: str) -> bool:
    """Make a new trial's directory whole, or not at all: built under a temporary name, then renamed into place.

    False when another expansion created it first (the rename finds it there); ours is then discarded.
    """
    temp = Path(tempfile.mkdtemp(prefix=f".{trial.name}.", dir=trial.dir.parent))
    (temp / CONFIG_FILE).write_text(text)
    (temp / TRIAL_FILE).write_text(record_text)
    try:
        os.rename(temp, trial.dir)
        return True
    except OSError:  # the directory exists (and is not empty): another expansion was first
        shutil.rmtree(temp)
        return False


def _new_trial(
    leaf_dir: Path, number: int, text: str, fields: dict[str, Any], records: RecordText
) -> tuple[Trial, dict[str, Any] | None]:
    """The first free number from `number` on, created with `text` (record returned); or the trial with these axes
    that a concurrent expansion created a moment ago (record None: read it)."""
    while True:
        trial = Trial(leaf_dir / trial_name(number))
        if not trial.dir.exists():
            record = {"trial": trial.name, **fields}
            record_text = records.render(trial.name, fields["config_hash"], fields["axes"])
            if create_trial(trial, text, record_text):
                return trial, record
        record = load(trial.record_path)
        if isinstance(record, dict) and _key(record.get("axes") or {}) == _key(fields["axes"]):
            return trial, None
        number += 1  # another trial, or a folder that is not a trial: leave it alone


def expand_leaf(plan: LeafPlan, out: Path) -> list[tuple[Trial, dict[str, Any]]]:
    """Write the leaf's trials under `out`; returns those in the sweep with their records, in axis order.

    A searched leaf writes none: its trials are those its study has asked for so far, by number."""
    leaf_dir = leaf_out(plan, out)
    leaf_dir.mkdir(parents=True, exist_ok=True)
    if plan.search is not None:
        return searched_trials(leaf_dir)
    existing = _existing(leaf_dir)
    next_number = max((n for n, _, _ in existing.values()), default=-1) + 1
    axis_keys = [axis.key for axis in plan.axes]
    renderer = ConfigText(plan.base, axis_keys)
    found = []
    wanted = set()
    # A record's keys in the order trial.yaml shows them; `trial`, `axes` and `config_hash` vary per trial.
    skeleton = {"leaf": plan.leaf.name, "mode": plan.leaf.mode.value, "axes": {}}
    skeleton.update(status=Status.PENDING.value, in_sweep=True, config_hash="")
    records = RecordText({"trial": "", **skeleton}, axis_keys)
    for axes in product(plan.axes):
        key = _key(axes)
        wanted.add(key)
        text = renderer.render(axes)
        digest = config_hash(text)
        fields = {**skeleton, "axes": axes, "config_hash": digest}
        if key not in existing:
            trial, record = _new_trial(leaf_dir, next_number, text, fields, records)
            next_number = int(_TRIAL_DIR.match(trial.name)[1]) + 1
            if record is not None:
                found.append((trial, record))
                continue
            record = trial.record()
        else:
            _, trial, record = existing[key]
        _write_config(trial, text, digest, record)
        owned = {k: v for k, v in fields.items() if k != "status"}  # a runner's status is never overwritten
        if "status" not in record or any(record.get(k) != v for k, v in owned.items()):
            record = trial.update(defaults={"status": Status.PENDING.value}, durable=False, trial=trial.name, **owned)
        found.append((trial, record))
    for key, (_, trial, record) in existing.items():
        if key not in wanted and record.get("in_sweep", True):
            trial.update(durable=False, in_sweep=False)
    return found


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
    found = expand_records(root, out, modes=modes, datasets=datasets, select=select, mode=mode)
    return [trial for trial, _ in found]


def read_plans(
    root: Path | str,
    *,
    modes: list[str] | str | None = None,
    datasets: list[str] | str | None = None,
    select: str | None = None,
    mode: str | SweepMode | None = None,
) -> list[LeafPlan]:
    """Every selected leaf, read and checked (ConfigError for the first that breaks a rule)."""
    leaves = select_leaves(find_leaves(root, mode=mode), modes=modes, datasets=datasets, select=select)
    return [plan(leaf) for leaf in leaves]


def expand_records(
    root: Path | str,
    out: Path | str | None = None,
    *,
    modes: list[str] | str | None = None,
    datasets: list[str] | str | None = None,
    select: str | None = None,
    mode: str | SweepMode | None = None,
) -> list[tuple[Trial, dict[str, Any]]]:
    """`expand`, returning each trial with its record as written (what `lighter sweep expand` prints)."""
    out = Path(out).expanduser() if out is not None else Path.cwd() / DEFAULT_OUT
    plans = read_plans(root, modes=modes, datasets=datasets, select=select, mode=mode)
    return expand_plans(plans, out)


def expand_plans(plans: list[LeafPlan], out: Path) -> list[tuple[Trial, dict[str, Any]]]:
    """Write the trials of leaves already read; (trial, record) pairs as `expand_records`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [found for p in plans for found in expand_leaf(p, out.resolve())]


def load_trials(out: Path | str) -> list[Trial]:
    """Every trial under `out`, in or out of the sweep, sorted by leaf then number."""
    out = Path(out)
    return [Trial(p.parent) for p in sorted(out.rglob(TRIAL_FILE)) if _TRIAL_DIR.match(p.parent.name)]
