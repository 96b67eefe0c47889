"""Helpers usable as `_target_` in YAML: load weights, replace a layer, wrap a MONAI metric.

Each loads on first use, so importing `lighter.utils` stays cheap.
"""

from importlib import import_module
from typing import Any

__all__ = ["MonaiMetric", "load_weights", "replace_layer"]

_LAZY = {
    "load_weights": "lighter.utils.weights",
    "replace_layer": "lighter.utils.layers",
    "MonaiMetric": "lighter.utils.metrics",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lighter.utils' has no attribute {name!r}")
