"""Which setting each run belongs to, and the one-row-per-trial table that `compare` reads.

A setting is the runs' values of the chosen axes (or their leaf). The values come from `Run.values`: a trial's
axes, else its config.yaml, so an experiment leaf that repeats a sweep setting over seeds joins that setting. A trial
counts once per setting and seed: the sweep's seed-0 run and the experiment's seed-0 run of the same setting are the
same measurement (the experiment's is kept). Only finished runs count: a running, pending, failed, stale or pruned
trial has no final value yet, or one from another config; nor does a trial no longer in the sweep (as in `lighter
sweep results`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pandas as pd

from lighter.dashboard.store import SEED, Run
from lighter.names import Status

LEAF = "leaf"  # group by the sweep leaf instead of axes
FINAL, BEST = "final", "best"
# Statuses whose values are final; None: a run no lighter record describes.
COUNTED = (None, Status.DONE, Status.FINISHED)
EXPERIMENT = "experiment"


def label(value: Any) -> str:
    """An axis value as a setting's name: 0.003, adam, true; floats in full, so close values stay apart."""
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else json.dumps(value)


def setting_of(run: Run, by: list[str]) -> str | None:
    """The setting of a run: `0.003` for one axis, `lr=0.003, batch=32` for several; None if it lacks one."""
    if by == [LEAF]:
        return run.leaf
    values = [run.values.get(axis, run.axes.get(axis)) for axis in by]
    if any(value is None for value in values):
        return None
    if len(by) == 1:
        return label(values[0])
    return ", ".join(f"{axis.split('::')[-1]}={label(value)}" for axis, value in zip(by, values, strict=True))


def value_of(reached: dict[str, dict], key: str, which: str, higher_is_better: bool) -> tuple[float, str] | None:
    """The run's final or best value of `mode/metric`, with where it comes from."""
    got = reached.get(key)
    if got is None:
        return None
    number = got["final"] if which == FINAL else got["max"] if higher_is_better else got["min"]
    return number, got["source"]


def trial_table(
    runs: Iterable[Run],
    reached: dict[str, dict[str, dict]],
    *,
    key: str,
    which: str,
    by: list[str],
    higher_is_better: bool,
) -> pd.DataFrame:
    """One row per counted trial: run, setting, value, source. `reached` maps run ids to `reduce.reached`."""
    rows, seen = [], {}
    # Experiments first, so the run kept for a (setting, seed) twice measured is the experiment's.
    for run in sorted(runs, key=lambda r: (r.leaf_mode != EXPERIMENT, r.id)):
        setting = setting_of(run, by)
        found = value_of(reached.get(run.id, {}), key, which, higher_is_better)
        if setting is None or found is None or run.status not in COUNTED or run.in_sweep is False:
            continue
        if run.values.get(SEED) is not None:
            twin = json.dumps([setting, sorted(run.values.items())], default=str)
            if twin in seen:
                continue
            seen[twin] = run.id
        rows.append({"run": run.id, "setting": setting, "value": found[0], "source": found[1]})
    return pd.DataFrame(rows, columns=["run", "setting", "value", "source"])
