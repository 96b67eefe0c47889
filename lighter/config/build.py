"""From a merged config to live objects: defaults, macros, the `project` package, stage pruning, MONAI.

References, expressions and instantiation are MONAI's `ConfigParser`; this module only prepares
the dict it is given, so each stage builds only what it uses.
"""

from __future__ import annotations

import copy
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

from lighter.config.errors import ConfigError
from lighter.config.loader import LoadedConfig
from lighter.keys import LOSS_MODES, METRIC_MODES, SEP, STAGE_MODES, SYSTEM_TARGETS, TARGET, TRAINER_TARGET, Mode, Stage

PROJECT_MODULE = "project"


def with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """`trainer` and `system` may leave out `_target_`; fill in Lightning's Trainer and lighter.System."""
    data = dict(data)
    for key, target in (("trainer", TRAINER_TARGET), ("system", SYSTEM_TARGETS[0])):
        value = data.get(key)
        if value is None and key == "trainer":
            data[key] = {TARGET: target}
        elif isinstance(value, dict) and TARGET not in value:
            data[key] = {TARGET: target, **value}
    return data


def expand_macros(data: dict[str, Any]) -> dict[str, Any]:
    """Resolve `%` macros and relative ids with MONAI, returning a plain dict."""
    from monai.bundle import ConfigParser

    parser = ConfigParser(copy.deepcopy(data))
    try:
        parser.resolve_macro_and_relative_ids()
    except (KeyError, ValueError, FileNotFoundError) as err:
        raise ConfigError(f"a macro or relative reference could not be resolved: {err}") from err
    return parser.get()


def is_lighter_system(data: dict[str, Any]) -> bool:
    system = data.get("system")
    return isinstance(system, dict) and system.get(TARGET) in SYSTEM_TARGETS


def prune(data: dict[str, Any], stage: Stage) -> dict[str, Any]:
    """Drop what `stage` does not use, so it is never built: other modes' data, optimizer outside fit."""
    data = dict(data)
    args = data.get("args")
    if isinstance(args, dict):
        data["args"] = {k: v for k, v in args.items() if k == stage.value}
    if not is_lighter_system(data):
        return data
    modes = STAGE_MODES[stage]
    system = dict(data["system"])
    for key, used in (
        ("dataloaders", modes),
        ("adapters", modes),
        ("metrics", [m for m in modes if m in METRIC_MODES]),
    ):
        if isinstance(system.get(key), dict):
            system[key] = {mode: v for mode, v in system[key].items() if mode in {m.value for m in used}}
    if Mode.TRAIN not in modes:
        system.pop("optimizer", None)
        system.pop("scheduler", None)
    if not any(mode in LOSS_MODES for mode in modes):
        system.pop("criterion", None)
    data["system"] = system
    return data


def import_project(loaded: LoadedConfig, value: Any) -> Path:
    """Import the `project` directory as the package `project`; return its absolute path.

    A relative path is tried against the current directory, then the directory of the config file that set it.
    """
    where = loaded.where("project")
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"must be a directory path, got {value!r}",
            key="project",
            location=where,
            suggestion="Write e.g. `project: ./my_project`.",
        )
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path]
    if not path.is_absolute() and where is not None and where.file is not None:
        candidates.append(Path(where.file).parent / path)
    found = next((c.resolve() for c in candidates if c.is_dir()), None)
    if found is None:
        tried = ", ".join(str(c) for c in candidates)
        raise ConfigError(
            f"directory '{value}' does not exist (tried {tried})",
            key="project",
            location=where,
            suggestion="Give a path relative to the current directory or to the config file.",
        )
    for name in [m for m in sys.modules if m == PROJECT_MODULE or m.startswith(PROJECT_MODULE + ".")]:
        del sys.modules[name]
    init = found / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(PROJECT_MODULE, init, submodule_search_locations=[str(found)])
    else:
        spec = importlib.machinery.ModuleSpec(PROJECT_MODULE, None, is_package=True)
        spec.submodule_search_locations = [str(found)]
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PROJECT_MODULE] = module
    if spec.loader is not None:
        spec.loader.exec_module(module)
    return found


def make_parser(data: dict[str, Any]) -> Any:
    """A parsed MONAI ConfigParser over `data`, ready for `get_parsed_content`."""
    from monai.bundle import ConfigParser

    parser = ConfigParser(copy.deepcopy(data))
    parser.parse()
    return parser


def key_exists(data: dict[str, Any], key: str) -> bool:
    node: Any = data
    for part in key.split(SEP):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True
