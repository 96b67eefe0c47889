"""Check a config before anything is built: structure, `_target_` imports, references and cycles.

Each check raises `ConfigError` naming the key path, where it was written and the likely fix, so a
mistake costs one glance instead of a traceback through MONAI.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

from lighter.config import components
from lighter.config.loader import LoadedConfig, key_exists
from lighter.config.targets import locate_target
from lighter.config.tree import is_lighter_system, walk
from lighter.errors import ConfigError, did_you_mean
from lighter.names import (
    ADAPTER_KINDS,
    COMPONENT_KEYS,
    DISABLED,
    EXPR,
    METRIC_MODES,
    REF,
    SEP,
    SYSTEM_KEYS,
    TARGET,
    TOP_LEVEL_KEYS,
    TRAINER_TARGET,
    TUNER_METHODS,
    Mode,
    Stage,
)

_MODES = tuple(m.value for m in Mode)
_STAGES = (*(s.value for s in Stage), *TUNER_METHODS)


def _unknown_key(key: str, allowed: tuple[str, ...], parent: str, loaded: LoadedConfig) -> ConfigError:
    full = f"{parent}{SEP}{key}" if parent else key
    where = "at the top level" if not parent else f"under {parent}"
    hint = _path_hint(key, allowed, loaded) if not parent else None
    return ConfigError(
        f"unknown key '{key}' {where}",
        key=full,
        location=loaded.where(full),
        suggestion=hint or did_you_mean(key, allowed, fallback=f"Valid keys: {', '.join(allowed)}."),
    )


def _path_hint(key: str, allowed: tuple[str, ...], loaded: LoadedConfig) -> str | None:
    """A top-level key that is really a path: `trainer.max_epochs` (dots for `::`) or `max_epochs` (no parent)."""
    head = key.split(".", 1)[0]
    if "." in key and head in allowed:
        return f"Separate ids with `::`, not dots: {key.replace('.', SEP)}."
    nested = [k for k, _ in walk(loaded.data) if k.endswith(SEP + key) and k.count(SEP) == 1]
    if not nested:
        trainer, _ = locate_target(TRAINER_TARGET)  # imports Lightning, on this error path only
        with contextlib.suppress(TypeError, ValueError):
            if trainer is not None and key in inspect.signature(trainer).parameters:
                nested = [f"trainer{SEP}{key}"]
    return f"Did you mean '{nested[0]}'?" if nested else None


def _check_keys(node: Any, allowed: tuple[str, ...], parent: str, loaded: LoadedConfig) -> None:
    if isinstance(node, dict):
        for key in node:
            if str(key) not in allowed:
                raise _unknown_key(str(key), allowed, parent, loaded)


def check_structure(config: dict[str, Any], loaded: LoadedConfig, lighter_system: bool) -> None:
    """Top-level keys, `args` stages, and for lighter.System its keys, modes and adapter kinds."""
    _check_keys(config, TOP_LEVEL_KEYS, "", loaded)
    _check_keys(config.get("args"), _STAGES, "args", loaded)
    if not lighter_system:
        return
    system = config["system"]
    _check_keys(system, SYSTEM_KEYS + COMPONENT_KEYS, "system", loaded)
    _check_keys(system.get("dataloaders"), _MODES, "system::dataloaders", loaded)
    _check_keys(system.get("metrics"), tuple(m.value for m in METRIC_MODES), "system::metrics", loaded)
    adapters = system.get("adapters")
    _check_keys(adapters, _MODES, "system::adapters", loaded)
    if isinstance(adapters, dict):
        for mode, kinds in adapters.items():
            _check_keys(kinds, ADAPTER_KINDS, f"system::adapters::{mode}", loaded)


def check_targets(config: dict[str, Any], loaded: LoadedConfig) -> None:
    """Every `_target_` with a dotted path must import, so a typo fails before anything is built."""
    for key, value in walk(config):
        if not (isinstance(value, dict) and isinstance(value.get(TARGET), str)) or value.get(DISABLED) is True:
            continue
        target = value[TARGET]
        if "." not in target or target.startswith((REF, EXPR)):
            continue  # a MONAI short name or a reference: MONAI resolves those
        _, why = locate_target(target)
        if why:
            target_key = f"{key}{SEP}{TARGET}"
            raise ConfigError(
                f"cannot import '{target}': {why}",
                key=target_key,
                location=loaded.where(target_key),
                suggestion=None,
            )


def references(value: Any) -> list[str]:
    """The ids a string refers to: the whole of `@id`, or each `@id` inside a `$` expression."""
    from lighter.config.monai_bundle import ReferenceResolver  # lazy: MONAI imports torch

    if not isinstance(value, str) or not value.startswith((REF, EXPR)):
        return []
    return list(ReferenceResolver.match_refs_pattern(value))


def check_references(config: dict[str, Any], full: dict[str, Any], loaded: LoadedConfig, stage: Stage) -> None:
    """Every `@id` must exist in what this stage builds; then no chain of references may loop."""
    ids = [key for key, _ in walk(full)]
    graph: dict[str, list[str]] = {}
    for key, value in walk(config):
        parent = key.rpartition(SEP)[0]
        graph.setdefault(parent, []).append(key)
        for ref in references(value):
            if not key_exists(config, ref):
                if key_exists(full, ref):
                    why = f"'{ref}' is not built for `lighter {stage.value}`, which only builds what that stage uses"
                    hint = "Refer to it only from parts this stage uses, or give the value under `vars`."
                else:
                    why = f"the reference '@{ref}' points to nothing"
                    hint = did_you_mean(ref, ids, fallback="Check the spelling of the id.")
                raise ConfigError(why, key=key, location=loaded.where(key), suggestion=hint)
            graph.setdefault(key, []).append(ref)
    _check_cycles(graph, loaded)


def _check_cycles(graph: dict[str, list[str]], loaded: LoadedConfig) -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in list(graph):
        if state.get(root):
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph.get(root, ())))]
        state[root] = 1
        path.append(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                cycle = path[path.index(child) :] + [child]
                raise ConfigError(
                    "circular reference: " + " -> ".join(cycle),
                    key=cycle[-2],
                    location=loaded.where(cycle[-2]),
                    suggestion="Break the loop: one of these must not depend on the others.",
                )
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(graph.get(child, ()))))


def validate(
    config: dict[str, Any], pruned: dict[str, Any], loaded: LoadedConfig, stage: Stage, *, imports: bool = True
) -> None:
    """All pre-build checks, cheapest first. Without `imports` (`lighter show`), only those that import nothing,
    on the whole config rather than one stage's part."""
    check_structure(config, loaded, is_lighter_system(config))
    components.check_shapes(config, loaded)
    if not imports:
        check_references(config, config, loaded, stage)
        return
    check_references(pruned, config, loaded, stage)
    components.check_stage_parts(pruned, loaded, stage)
    check_targets(pruned, loaded)
    components.check_kinds(pruned, loaded)
