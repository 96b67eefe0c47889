"""`_target_` import paths: whether one is well formed, and importing it with a hint when it fails."""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

from lighter.errors import did_you_mean
from lighter.names import PROJECT_MODULE, RENAMED

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
    obj, why = _locate(target)
    parts = target.split(".")
    if why is not None and parts[0] == "lighter" and parts[-1] in RENAMED:
        why = f"'{parts[-1]}' is the name of an older lighter. Write `_target_: {RENAMED[parts[-1]]}`."
    return obj, why


def _project_hint(target: str) -> str | None:
    """`models.net.Net` while the `project:` folder holds `models/`: its modules are imported as `project.*`."""
    project = sys.modules.get(PROJECT_MODULE)
    first = target.split(".")[0]
    for folder in getattr(project, "__path__", ()):
        if (Path(folder) / first).is_dir() or (Path(folder) / f"{first}.py").is_file():
            return f"Did you mean '{PROJECT_MODULE}.{target}'? The `project:` folder is imported as `{PROJECT_MODULE}`."
    return None


def _locate(target: str) -> tuple[Any, str | None]:
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
        hint = (
            _project_hint(target) or did_you_mean(parts[0], names) or "Is the package installed, or is `project:` set?"
        )
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
