"""A leaf's axes: the `sweep:` block and a list-valued `seed`, checked against the leaf's mode.

Rules (each broken one is a ConfigError naming the key, file and line):
- `sweep:` maps key paths (`system::optimizer::lr`, `#` works too) to non-empty lists of distinct values;
  a list anywhere else is an ordinary value, never an axis.
- `seed: [0, 1, 2]` is the seed axis; without a list, a scalar integer `seed` is required.
- sweep mode: `seed` is a scalar; any number of `sweep:` axes. experiment mode: only `seed` varies, no `sweep:` axes.
- An axis must name a key the merged config has. To add a key the config lacks, write it with a leading `+`
  (`+system::model::dropout: [0.1, 0.2]`), as in Hydra's overrides; a missing key without `+` gets a did-you-mean.
- A range (`{low, high, log, step, int}`, lighter/sweep/distributions.py) only in a leaf whose `search:` block names
  a sampler other than grid (lighter/sweep/search_block.py); there a list is a categorical choice.
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
from dataclasses import dataclass
from typing import Any

from lighter.config.loader import LoadedConfig, all_ids, key_exists, normalize_id, set_key
from lighter.errors import ConfigError, Location, did_you_mean
from lighter.names import SEP
from lighter.sweep.cascade import Leaf, SweepMode
from lighter.sweep.distributions import Range, is_range, parse_range
from lighter.sweep.search_block import GRID, SEARCH_KEY, sampler_of

SWEEP_KEY = "sweep"
LAUNCHER_KEY = "launcher"  # SLURM settings of `lighter sweep run --executor slurm`; not part of a trial's config
SEED_KEY = "seed"
CREATE = "+"  # an axis key written `+key` may create the key


@dataclass(frozen=True)
class Axis:
    key: str  # `::` key path into the config
    values: tuple[Any, ...]
    written: str = SEED_KEY  # where the axis was written: `seed`, or `sweep::<key as written>`
    range: Range | None = None  # a searched range (`values` is empty then)

    def example(self) -> Any:
        return self.range.example() if self.range is not None else self.values[0]


def _error(loaded: LoadedConfig, leaf: Leaf, key: str, message: str, suggestion: str) -> ConfigError:
    location = loaded.where(key) or Location(str(leaf.file))
    return ConfigError(message, key=key, location=location, suggestion=suggestion)


def _check_seed_value(loaded: LoadedConfig, leaf: Leaf, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _error(loaded, leaf, SEED_KEY, f"a seed is an integer, got {value!r}", "Write e.g. `seed: 0`.")


def _seed_axis(loaded: LoadedConfig, leaf: Leaf) -> Axis | None:
    data = loaded.data
    if SEED_KEY not in data:
        example = "`seed: 0`" if leaf.mode is SweepMode.SWEEP else "`seed: [0, 1, 2]` (or `seed: 0`)"
        raise _error(
            loaded,
            leaf,
            SEED_KEY,
            f"a {leaf.mode.value} needs a seed, and no file of this leaf sets one",
            f"Add {example} to {leaf.file} or a cfg.yaml above it.",
        )
    seed = data[SEED_KEY]
    if not isinstance(seed, list):
        _check_seed_value(loaded, leaf, seed)
        if leaf.mode is SweepMode.EXPERIMENT:
            print(
                f"lighter sweep: note: {leaf.name or leaf.file}: this experiment has one seed (seed: {seed}, "
                f"{loaded.where(SEED_KEY) or leaf.file}), so one trial; repeat it over seeds with `seed: [0, 1, 2]`.",
                file=sys.stderr,
            )
        return None
    if leaf.mode is SweepMode.SWEEP:
        raise _error(
            loaded,
            leaf,
            SEED_KEY,
            "in sweep mode the seed is a scalar; a list of seeds is an experiment",
            "Write one seed (`seed: 0`), or move this leaf under experiment/ to repeat one setting over seeds.",
        )
    for value in seed:
        _check_seed_value(loaded, leaf, value)
    return Axis(SEED_KEY, _distinct(loaded, leaf, SEED_KEY, seed))


def _distinct(loaded: LoadedConfig, leaf: Leaf, key: str, values: list[Any]) -> tuple[Any, ...]:
    if not values:
        raise _error(loaded, leaf, key, "an axis needs at least one value", "Give a list such as [0.001, 0.01].")
    seen = set()
    for value in values:
        marker = json.dumps(value, sort_keys=True, default=str)
        if marker in seen:
            raise _error(loaded, leaf, key, f"the value {value!r} appears twice", "List each value once.")
        seen.add(marker)
    return tuple(values)


def _sweep_axes(loaded: LoadedConfig, leaf: Leaf) -> list[Axis]:
    block = loaded.data.get(SWEEP_KEY)
    if block is None:
        return []
    if not isinstance(block, dict):
        raise _error(
            loaded,
            leaf,
            SWEEP_KEY,
            f"`sweep:` maps key paths to lists of values, got a {type(block).__name__}",
            "Write e.g.\n    sweep:\n      system::optimizer::lr: [0.001, 0.01]",
        )
    axes = []
    for written, values in block.items():
        written = str(written)
        where = f"{SWEEP_KEY}{SEP}{written}"
        creates = written.startswith(CREATE)
        key = normalize_id(written[len(CREATE) :] if creates else written)
        if leaf.mode is SweepMode.EXPERIMENT:
            raise _error(
                loaded,
                leaf,
                where,
                "in experiment mode only the seed varies; a `sweep:` axis is not allowed",
                "Fix this value in the config and repeat over seeds with `seed: [0, 1, 2]`, "
                "or move the leaf under sweep/.",
            )
        if key in (SEED_KEY, SWEEP_KEY):
            raise _error(
                loaded,
                leaf,
                where,
                f"`{key}` cannot be a `sweep:` axis",
                "Seeds vary in experiment mode, with a top-level `seed: [0, 1, 2]`.",
            )
        found = _range(loaded, leaf, where, written, values) if is_range(values) else None
        if found is None and not isinstance(values, list):
            raise _error(
                loaded, leaf, where, f"an axis is a list of values, got {values!r}", f"Write `{written}: [{values}]`."
            )
        if not creates and not key_exists(loaded.data, key):
            others = [k for k in all_ids(loaded.data) if k != SWEEP_KEY and not k.startswith(SWEEP_KEY + SEP)]
            hint = did_you_mean(key, others, fallback="Check the key path against the merged config (`lighter show`).")
            raise _error(
                loaded,
                leaf,
                where,
                f"the axis names '{key}', which the merged config does not have",
                f"{hint} To add a new key, write it as `{CREATE}{key}`.",
            )
        if found is not None:
            axes.append(Axis(key, (), where, found))
        else:
            axes.append(Axis(key, _distinct(loaded, leaf, where, values), where))
    return axes


def _range(loaded: LoadedConfig, leaf: Leaf, where: str, written: str, value: dict) -> Range:
    """A `{low, high, ...}` axis: only a search samples from a range; the grid needs the values listed."""
    if sampler_of(loaded) == GRID:
        raise _error(
            loaded,
            leaf,
            where,
            "a range needs a search: the grid runs listed values only",
            f"Add a `{SEARCH_KEY}:` block with a sampler (random, tpe, gp, cmaes), `trials` and `monitor`, "
            f"or list the values: `{written}: [...]`.",
        )
    try:
        return parse_range(value)
    except ValueError as err:
        hint = "Write e.g. `{low: 1.0e-4, high: 0.1, log: true}` or `{low: 8, high: 64, int: true}`."
        raise _error(loaded, leaf, where, f"not a range: {err}", hint) from err


def leaf_axes(loaded: LoadedConfig, leaf: Leaf) -> list[Axis]:
    """The leaf's axes in written order, the seed axis last (so one setting's seeds sit side by side)."""
    axes = _sweep_axes(loaded, leaf)
    seed = _seed_axis(loaded, leaf)
    return axes + ([seed] if seed else [])


def check_reachable(loaded: LoadedConfig, leaf: Leaf, base: dict[str, Any], axes: list[Axis]) -> None:
    """Each axis can be set in `base`: a `+key` may create mappings, but not index past a list or into a value."""
    for axis in axes:
        try:
            set_key(copy.deepcopy(base), axis.key, axis.example())
        except ConfigError as err:
            hint = "A `+` axis adds keys to mappings, not items to lists or keys inside a value: sweep the parent key."
            raise _error(loaded, leaf, axis.written, f"the axis cannot be set: {err.message}", hint) from err


def product(axes: list[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, as {key: value}; one empty combination when there are no axes."""
    keys = [a.key for a in axes]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(a.values for a in axes))]
