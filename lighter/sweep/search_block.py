"""A leaf's `search:` block: how its `sweep:` axes are searched instead of run as a full grid.

    search:
      sampler: tpe        # grid (the default: every combination, as without this block) | random | tpe | gp | cmaes
      trials: 12          # the budget: trials that complete or are pruned
      monitor: val/metrics/accuracy/epoch   # what a trial reports after each validation epoch
      mode: max           # min | max (default: min for names with loss/error/..., else max)
      pruner: median      # none | median | successive_halving | hyperband, or {name: median, <Optuna's arguments>}
      seed: 0             # the sampler's seed
      startup_trials: 4   # random trials before the sampler models the results (tpe, gp, cmaes)

Reading it imports nothing heavy; `lighter.sweep.study` turns it into an Optuna study.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lighter.config.loader import LoadedConfig
from lighter.errors import ConfigError, Location, did_you_mean
from lighter.names import SEP
from lighter.sweep.cascade import Leaf, SweepMode
from lighter.sweep.results import lower_is_better

SEARCH_KEY = "search"
GRID = "grid"
SAMPLERS = (GRID, "random", "tpe", "gp", "cmaes")
PRUNERS = ("none", "median", "successive_halving", "hyperband")
MODES = ("min", "max")
FIELDS = ("sampler", "trials", "monitor", "mode", "pruner", "seed", "startup_trials")
PRUNING_TARGET = "lighter.sweep.pruning.Pruning"
EXAMPLE = "search:\n      sampler: tpe\n      trials: 12\n      monitor: val/loss/epoch\n      mode: min"


@dataclass(frozen=True)
class Search:
    """A checked `search:` block (sampler other than grid)."""

    sampler: str
    trials: int
    monitor: str
    mode: str
    pruner: str = "none"
    pruner_args: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    startup_trials: int | None = None

    @property
    def direction(self) -> str:
        return "minimize" if self.mode == "min" else "maximize"

    def as_record(self) -> dict[str, Any]:
        """What a trial's callback and `sweep results` need, as plain YAML."""
        return {
            "sampler": self.sampler,
            "trials": self.trials,
            "monitor": self.monitor,
            "mode": self.mode,
            "pruner": self.pruner,
            "pruner_args": dict(self.pruner_args),
            "seed": self.seed,
            "startup_trials": self.startup_trials,
        }


def _error(loaded: LoadedConfig, leaf: Leaf, key: str, message: str, suggestion: str | None) -> ConfigError:
    location = loaded.where(key) or Location(str(leaf.file))
    return ConfigError(message, key=key, location=location, suggestion=suggestion)


def sampler_of(loaded: LoadedConfig) -> str:
    """The sampler a leaf names (grid without a `search:` block); unchecked, for the axes' rules."""
    block = loaded.data.get(SEARCH_KEY)
    return str(block.get("sampler", GRID)) if isinstance(block, dict) else GRID


def _whole(loaded: LoadedConfig, leaf: Leaf, block: dict, name: str, least: int) -> int | None:
    value = block.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _error(
            loaded, leaf, f"{SEARCH_KEY}{SEP}{name}", f"`{name}` is a whole number of at least {least}, got {value!r}",
            f"e.g. `{name}: {max(least, 4)}`",
        )  # fmt: skip
    return value


def _pruner(loaded: LoadedConfig, leaf: Leaf, value: Any) -> tuple[str, dict[str, Any]]:
    key = f"{SEARCH_KEY}{SEP}pruner"
    args: dict[str, Any] = {}
    if isinstance(value, dict):
        args = {k: v for k, v in value.items() if k != "name"}
        value = value.get("name")
    name = "none" if value is None else str(value)
    if name not in PRUNERS:
        hint = did_you_mean(name, PRUNERS, fallback=f"Pruners: {', '.join(PRUNERS)}.")
        raise _error(loaded, leaf, key, f"unknown pruner {name!r}", hint)
    if args and name == "none":
        raise _error(loaded, leaf, key, "pruner `none` takes no arguments", "Name a pruner, e.g. `name: median`.")
    return name, args


def read_search(loaded: LoadedConfig, leaf: Leaf) -> Search | None:
    """The leaf's search, checked; None for a grid (no `search:` block, or `sampler: grid`)."""
    block = loaded.data.get(SEARCH_KEY)
    if block is None:
        return None
    if not isinstance(block, dict):
        raise _error(loaded, leaf, SEARCH_KEY, f"`search:` is a mapping, got {block!r}", f"Write e.g.\n    {EXAMPLE}")
    if leaf.mode is SweepMode.EXPERIMENT:
        raise _error(
            loaded, leaf, SEARCH_KEY, "in experiment mode only the seed varies; a `search:` block is not allowed",
            "Search in a sweep leaf, then write its best setting here with `lighter sweep best`.",
        )  # fmt: skip
    for name in block:
        if name not in FIELDS:
            hint = did_you_mean(str(name), FIELDS, fallback=f"Its keys: {', '.join(FIELDS)}.")
            raise _error(loaded, leaf, f"{SEARCH_KEY}{SEP}{name}", f"`search:` has no key {name!r}", hint)
    sampler = str(block.get("sampler", GRID))
    if sampler not in SAMPLERS:
        hint = did_you_mean(sampler, SAMPLERS, fallback=f"Samplers: {', '.join(SAMPLERS)}.")
        raise _error(loaded, leaf, f"{SEARCH_KEY}{SEP}sampler", f"unknown sampler {sampler!r}", hint)
    if sampler == GRID:
        extra = [k for k in block if k != "sampler"]
        if extra:
            raise _error(
                loaded, leaf, f"{SEARCH_KEY}{SEP}{extra[0]}", f"`{extra[0]}` has no meaning for the grid, which runs "
                "every combination", f"Choose a sampler ({', '.join(SAMPLERS[1:])}), or remove `{extra[0]}`.",
            )  # fmt: skip
        return None
    for name in ("trials", "monitor"):
        if block.get(name) is None:
            raise _error(loaded, leaf, SEARCH_KEY, f"a `{sampler}` search needs `{name}`", f"Write e.g.\n    {EXAMPLE}")
    monitor = block["monitor"]
    if not isinstance(monitor, str) or not monitor:
        raise _error(
            loaded, leaf, f"{SEARCH_KEY}{SEP}monitor", f"`monitor` is a logged name, got {monitor!r}",
            "e.g. `monitor: val/loss/epoch`",
        )  # fmt: skip
    mode = block.get("mode") or ("min" if lower_is_better(monitor) else "max")
    if mode not in MODES:
        hint = did_you_mean(str(mode), MODES, fallback="Write `mode: min` or `mode: max`.")
        raise _error(loaded, leaf, f"{SEARCH_KEY}{SEP}mode", f"unknown mode {mode!r}", hint)
    seed = block.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _error(loaded, leaf, f"{SEARCH_KEY}{SEP}seed", f"a seed is an integer, got {seed!r}", "e.g. `seed: 0`")
    pruner, pruner_args = _pruner(loaded, leaf, block.get("pruner"))
    return Search(
        sampler=sampler,
        trials=_whole(loaded, leaf, block, "trials", 1),
        monitor=monitor,
        mode=mode,
        pruner=pruner,
        pruner_args=pruner_args,
        seed=seed,
        startup_trials=_whole(loaded, leaf, block, "startup_trials", 0),
    )


def pruning_callback(study: dict[str, Any]) -> dict[str, Any]:
    """The callback a searched trial runs with (`study`: its trial record's `study:`); lighter/sweep/pruning.py."""
    return {
        "_target_": PRUNING_TARGET,
        "storage": study["storage"],
        "study": study["name"],
        "trial": study["number"],
        "monitor": study["monitor"],  # a `monitor:` key, so it is checked against the logged names as others are
    }
