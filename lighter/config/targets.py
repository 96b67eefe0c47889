"""`_target_` import paths: whether one is well formed, and importing it with a hint when it fails."""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

from lighter.config.errors import did_you_mean

_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


def target_problem(target: Any) -> str | None:
    """Why `target` cannot be an import path (None when it can); references and expressions are left to MONAI."""
    if not isinstance(target, str):
        return f"is a {type(target).__name__}, not an import path"
    if target.startswith(("@", "$")) or _DOTTED.match(target):
        return None
    if not target.strip():
        return "is empty"
    if target.startswith("."):
        return f"'{target}' starts with a dot: relative imports have no package to be relative to"
    if ".." in target or target.endswith("."):
        return f"'{target}' has an empty part between dots"
    return f"'{target}' is not a dotted Python name"


def locate_target(target: str) -> tuple[Any, str | None]:
    """Import a dotted path; return (object, None) or (None, why it failed with the closest names)."""
    parts = target.split(".")
    module = None
    index = 0
    for index in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:index]))
            break
        except ModuleNotFoundError as err:
            missing = err.name or ""
            if missing and not ".".join(parts[:index]).startswith(missing):
                return None, f"importing it failed: {err}"  # a dependency of the module is missing
        except ImportError as err:
            return None, f"importing '{'.'.join(parts[:index])}' failed: {err}"
    if module is None:
        names = [m.name for m in pkgutil.iter_modules()]
        hint = did_you_mean(parts[0], names) or "Is the package installed, or is `project:` set?"
        return None, f"no module named '{parts[0]}'. {hint}"
    obj: Any = module
    for depth in range(index, len(parts)):
        if not hasattr(obj, parts[depth]):
            done = ".".join(parts[:depth])
            names = [n for n in dir(obj) if not n.startswith("_")]
            hint = did_you_mean(parts[depth], names) or ""
            return None, f"'{done}' has no attribute '{parts[depth]}'. {hint}".rstrip()
        obj = getattr(obj, parts[depth])
    return obj, None
