"""A nested config as flat hyperparameters that every tracker accepts, so runs compare by setting in its UI.

Key paths join with `/` (Lightning's own flattening, and the one separator MLflow, TensorBoard, W&B and Comet
all accept; MLflow refuses `:` on some platforms and `@`, `$`, `%` everywhere). Other characters become `_`.
Names stay under MLflow's 250 characters (a long one keeps its start and gains a short hash, so it stays unique),
values under the 250 characters Lightning's MLFlowLogger keeps.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

SEPARATOR = "/"
MAX_NAME = 250
MAX_VALUE = 250
_UNSAFE = re.compile(r"[^\w.\- ]")


def _name(parts: list[str]) -> str:
    name = SEPARATOR.join(_UNSAFE.sub("_", part) or "_" for part in parts)
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}~{digest}"


def _value(value: Any) -> bool | int | float | str:
    if isinstance(value, bool | int | float):
        return value
    text = "null" if value is None else "{}" if value == {} else "[]" if value == [] else str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def flatten(config: Any, parts: list[str] | None = None) -> dict[str, bool | int | float | str]:
    """`{"system": {"optimizer": {"lr": 0.1}}}` -> `{"system/optimizer/lr": 0.1}`; list items by index."""
    parts = parts or []
    items = config.items() if isinstance(config, dict) else enumerate(config) if isinstance(config, list) else None
    if items is None or not config:
        return {_name(parts): _value(config)} if parts else {}
    flat: dict[str, bool | int | float | str] = {}
    for key, value in items:
        flat.update(flatten(value, [*parts, str(key)]))
    return flat
