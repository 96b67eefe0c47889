"""What a config will import and evaluate: a shared YAML file is code, so `lighter show --trust` lists it."""

from __future__ import annotations

from typing import Any

from lighter.config.loader import LoadedConfig
from lighter.config.tree import walk
from lighter.names import EXPR, SEP, TARGET


def trust_summary(config: dict[str, Any], loaded: LoadedConfig) -> str:
    """Every `_target_` (grouped by top-level package) and every `$` expression, with key paths and lines."""
    targets: dict[str, list[tuple[str, str, str]]] = {}
    expressions: list[tuple[str, str, str]] = []
    for key, value in walk(config):
        if key.endswith(SEP + TARGET) and isinstance(value, str) and not value.startswith(EXPR):
            package = value.split(".", 1)[0]
            owner = key[: -len(SEP + TARGET)]
            targets.setdefault(package, []).append((value, owner, str(loaded.where(key) or "")))
        elif isinstance(value, str) and value.startswith(EXPR):
            expressions.append((key, value, str(loaded.where(key) or "")))
    lines = ["# Trust summary: code this config runs", "# Modules imported through _target_:"]
    for package in sorted(targets):
        local = " (the `project` folder: local code)" if package == "project" else ""
        lines.append(f"#   {package}{local}")
        lines += [f"#     {target:<45} {owner}  [{where}]" for target, owner, where in targets[package]]
    lines.append(f"# Expressions evaluated with Python's eval ({len(expressions)}):")
    lines += [f"#   {key}: {value}  [{where}]" for key, value, where in expressions]
    if config.get("project"):
        lines.append(f"# Project folder imported as `project`: {config['project']}")
    return "\n".join(lines)
