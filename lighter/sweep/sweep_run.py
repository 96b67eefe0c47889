"""`lighter sweep run ROOT`: expand the cascade, then run every trial that is not complete, locally or on SLURM.

A grid leaf's trials run through `execute.run_dirs`; a searched leaf through `search_loop.run_search`, which asks its
study for trials and runs them through `run_dirs` too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from lighter.sweep.axes import LAUNCHER_KEY
from lighter.sweep.cascade import CFG_FILE
from lighter.sweep.execute import SweepRun, run_dirs
from lighter.sweep.expand import DEFAULT_OUT, expand_plans, read_plans


def launcher_block(root: Path) -> dict[str, Any]:
    """The `launcher:` block of the cascade's root config (`ROOT/cfg.yaml`, or the single config file)."""
    path = root / CFG_FILE if root.is_dir() else root
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else None
    except yaml.YAMLError:
        return {}  # the expansion reports a broken file, with its line
    block = data.get(LAUNCHER_KEY) if isinstance(data, dict) else None
    return dict(block) if isinstance(block, dict) else {}


def run_trials(
    root: str | Path,
    out: str | Path | None = None,
    modes: Sequence[str] | str | None = None,
    datasets: Sequence[str] | str | None = None,
    jobs: int = 1,
    *,
    select: str | None = None,
    mode: str | None = None,
    executor: str = "local",
    fail_fast: bool = False,
    rerun_stale: bool = False,
    launcher: Mapping[str, Any] | None = None,
    warm: bool = True,
    gpus_per_trial: int = 1,
    stream: TextIO | None = None,
) -> SweepRun:
    """`lighter sweep run ROOT`: expand the cascade at `root` into `out`, then run every trial not complete.

    `out` defaults to `runs/sweeps` below the current directory. `jobs` trials run at once on this machine
    (`executor="local"`), or all go to SLURM as one job array (`executor="slurm"`, with `launcher` settings over
    those of the root config's `launcher:` block). Prints a line per trial start and end and a closing table; the
    result's `exit_code` is what the CLI exits with.
    """
    root = Path(root)
    out_dir = Path(out).expanduser().resolve() if out is not None else Path.cwd() / DEFAULT_OUT
    plans = read_plans(root, modes=modes, datasets=datasets, select=select, mode=mode)
    searched = [p for p in plans if p.search is not None]
    trials = expand_plans([p for p in plans if p.search is None], out_dir)
    merged = {**launcher_block(root), **{k: v for k, v in (launcher or {}).items() if v is not None}}
    options = dict(jobs=jobs, executor=executor, fail_fast=fail_fast, launcher=merged, warm=warm,
                   gpus_per_trial=gpus_per_trial, stream=stream)  # fmt: skip
    result = None
    if trials or not searched:
        result = run_dirs([t.dir for t, _ in trials], out_dir, rerun_stale=rerun_stale, **options)
    if searched:
        from lighter.sweep.search_loop import run_search  # lazy: a grid sweep never imports optuna (0.4 s)

        for leaf in searched:
            if result is not None and (result.interrupted or (fail_fast and result.failed)):
                break
            result = joined(result, run_search(leaf, out_dir, **options))
    assert result is not None
    return result


def joined(first: SweepRun | None, then: SweepRun) -> SweepRun:
    """Two runs (a grid, then a searched leaf) as one."""
    if first is None:
        return then
    return SweepRun(then.out, first.ended + then.ended, first.complete_before + then.complete_before, then.interrupted)
