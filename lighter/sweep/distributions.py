"""A searched axis written as a YAML range, and every searched axis as an Optuna distribution.

    system::optimizer::lr: {low: 1.0e-4, high: 1.0e-1, log: true}   # float, log-uniform
    system::optimizer::momentum: {low: 0.8, high: 0.99, step: 0.01}  # float on a grid of steps
    +system::optimizer::weight_decay: {low: 0, high: 3, int: true}   # int (`log`, `step` too)
    system::model::width: [8, 16, 32]                                # categorical

Optuna checks the bounds (low <= high, `log` with a positive low, `log` and `step` not together); its message
becomes a ConfigError with the axis's key and line. Optuna is imported only when a searched leaf is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RANGE_KEYS = ("low", "high", "log", "step", "int")
_PRIMITIVE = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Range:
    """`{low, high, log, step, int}` as written under `sweep:`."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    int: bool = False

    def example(self) -> Any:
        """A value in the range (the low end), for checks that need one value."""
        return int(self.low) if self.int else self.low


def is_range(value: Any) -> bool:
    return isinstance(value, dict)


def parse_range(value: dict[str, Any]) -> Range:
    """The range written as `value`; ValueError (the caller adds key and line) when it is not one."""
    unknown = [k for k in value if k not in RANGE_KEYS]
    if unknown:
        raise ValueError(f"a range takes {', '.join(RANGE_KEYS)}; {', '.join(map(str, unknown))} is not one of them")
    missing = [k for k in ("low", "high") if k not in value]
    if missing:
        raise ValueError(f"a range needs `low` and `high`; `{missing[0]}` is missing")
    for key in ("low", "high", "step"):
        number = value.get(key)
        if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float))):
            raise ValueError(f"`{key}` is a number, got {number!r}")
    for key in ("log", "int"):
        if not isinstance(value.get(key, False), bool):
            raise ValueError(f"`{key}` is true or false, got {value[key]!r}")
    found = Range(value["low"], value["high"], value.get("log", False), value.get("step"), value.get("int", False))
    to_optuna(found)  # Optuna's own checks of the bounds
    return found


def to_optuna(axis: Range | tuple[Any, ...]) -> Any:
    """The Optuna distribution of a range, or of a list of values (categorical: the values, else their indices)."""
    import optuna.distributions as od  # lazy: grid sweeps and `lighter --help` never import optuna (0.4 s)

    if isinstance(axis, Range):
        if axis.int:
            if not float(axis.low).is_integer() or not float(axis.high).is_integer():
                raise ValueError(f"an int range has whole bounds, got low {axis.low} and high {axis.high}")
            return od.IntDistribution(int(axis.low), int(axis.high), log=axis.log, step=int(axis.step or 1))
        return od.FloatDistribution(float(axis.low), float(axis.high), log=axis.log, step=axis.step)
    if all(isinstance(v, _PRIMITIVE) for v in axis):
        return od.CategoricalDistribution(list(axis))
    return od.CategoricalDistribution(list(range(len(axis))))  # mappings and lists: chosen by index


def from_optuna(axis: Range | tuple[Any, ...], sampled: Any) -> Any:
    """The config value for what Optuna sampled (an index back to its value for non-primitive choices)."""
    if isinstance(axis, Range) or all(isinstance(v, _PRIMITIVE) for v in axis):
        return sampled
    return axis[sampled]
