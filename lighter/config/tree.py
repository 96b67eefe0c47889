"""Plain functions over a config tree that every config module needs; they import nothing of lighter's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lighter.names import EXPR, REF, SEP, SYSTEM_TARGETS, TARGET


def walk(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (id, value) below `value`, depth first, ids joined with `::`."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        child_id = f"{prefix}{SEP}{key}" if prefix else str(key)
        yield child_id, child
        yield from walk(child, child_id)


def is_lighter_system(data: dict[str, Any]) -> bool:
    system = data.get("system")
    return isinstance(system, dict) and system.get(TARGET) in SYSTEM_TARGETS


def is_code(value: Any) -> bool:
    """An `@reference` or a `$expression`: its value is only known once MONAI resolves it."""
    return isinstance(value, str) and value.startswith((REF, EXPR))
