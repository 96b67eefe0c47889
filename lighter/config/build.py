"""From a merged config to live objects: defaults, macros, the `project` package, stage pruning, MONAI.

References, expressions and instantiation are MONAI's `ConfigParser`; this module only prepares
the dict it is given, so each stage builds only what it uses.
"""

from __future__ import annotations

import copy
import importlib.machinery
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from lighter.config.loader import LoadedConfig, key_exists, lookup
from lighter.config.reader import MAX_ENTRIES
from lighter.config.targets import locate_target
from lighter.config.tree import is_lighter_system, walk
from lighter.errors import ConfigError, KeyedError, did_you_mean
from lighter.names import (
    LOSS_MODES,
    MACRO,
    METRIC_MODES,
    MODE,
    PROJECT_MODULE,
    SEP,
    STAGE_MODES,
    SYSTEM_TARGETS,
    TARGET,
    TRAINER_TARGET,
    TUNER_METHODS,
    Mode,
    Stage,
)


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


def _check_macros(data: dict[str, Any], loaded: LoadedConfig) -> None:
    """Each same-file `%` macro must point at an existing id; say which key holds a broken one.

    File macros were inlined by the loader already.
    """
    from lighter.config.monai_bundle import ConfigParser  # lazy: MONAI imports torch

    targets: dict[str, str] = {}  # key of a macro -> the id it copies
    for key, value in walk(data):
        if not (isinstance(value, str) and value.startswith(MACRO)):
            continue
        try:
            value = ConfigParser.resolve_relative_ids(key, value)
        except ValueError as err:
            raise ConfigError(str(err), key=key, location=loaded.where(key)) from err
        target = value[len(MACRO) :]
        if not key_exists(data, target):
            raise ConfigError(
                f"the macro {value!r} points to nothing",
                key=key,
                location=loaded.where(key),
                suggestion=did_you_mean(target, [k for k, _ in walk(data)], fallback="Check the id after `%`."),
            )
        targets[key] = target
    _check_macro_growth(data, targets, loaded)


def _check_macro_growth(data: dict[str, Any], targets: dict[str, str], loaded: LoadedConfig) -> None:
    """Refuse macros that copy each other in a loop or grow the config past MAX_ENTRIES, from memoized counts,
    before MONAI copies anything: macros of macros multiply like YAML aliases do."""
    sizes: dict[str, int] = {}

    def expanded(node_id: str, path: tuple[str, ...]) -> int:
        if node_id in sizes:
            return sizes[node_id]
        if node_id in targets and node_id not in path:  # a macro copies its target, with the target's macros
            sizes[node_id] = expanded(targets[node_id], (*path, node_id))
            return sizes[node_id]
        if node_id in path:
            loop = " -> ".join((*path[path.index(node_id) :], node_id))
            raise ConfigError(
                f"macros copy each other in a loop: {loop}", key=path[-1], location=loaded.where(path[-1])
            )
        total = 1
        for key, _ in walk(lookup(data, node_id), node_id):
            total += expanded(targets[key], (*path, node_id)) if key in targets else 1
        sizes[node_id] = total
        return total

    for key in targets:
        try:
            size = expanded(targets[key], (key,))
        except RecursionError as err:
            raise ConfigError("macros nest too deep", key=key, location=loaded.where(key)) from err
        if size > MAX_ENTRIES:
            raise ConfigError(
                f"the macro {lookup(data, key)!r} expands to more than {MAX_ENTRIES:,} entries ({size:,})",
                key=key,
                location=loaded.where(key),
                suggestion="Macros copy their target each time; refer to it with @ instead, or copy less.",
            )


def expand_macros(data: dict[str, Any], loaded: LoadedConfig) -> dict[str, Any]:
    """Resolve `%` macros and relative ids with MONAI, returning a plain dict."""
    from lighter.config.monai_bundle import ConfigParser  # lazy: MONAI imports torch

    _check_macros(data, loaded)
    parser = ConfigParser(copy.deepcopy(data))
    parser.resolve_macro_and_relative_ids()
    return parser.get()


def prune(data: dict[str, Any], stage: Stage) -> dict[str, Any]:
    """Drop what `stage` does not use, so it is never built: other modes' data, optimizer outside fit."""
    data = dict(data)
    args = data.get("args")
    if isinstance(args, dict):
        kept = (stage.value, *(TUNER_METHODS if stage is Stage.FIT else ()))  # the tuner runs on fit's config
        data["args"] = {k: v for k, v in args.items() if k in kept}
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


def transforms_as_functions(data: dict[str, Any]) -> dict[str, Any]:
    """Adapter transforms written `{_target_: torch.argmax, dim: 1}` mean the function, not its result.

    Lighter's docs write them so; MONAI would call `torch.argmax(dim=1)` at build time. A transform whose
    target is a function (not a class) and that sets no `_mode_` gets `_mode_: callable`.
    """
    adapters = lookup(data, f"system{SEP}adapters", None)
    if not isinstance(adapters, dict):
        return data
    data = copy.deepcopy(data)
    for per_mode in data["system"]["adapters"].values():
        for adapter in per_mode.values() if isinstance(per_mode, dict) else ():
            for name, value in adapter.items() if isinstance(adapter, dict) else ():
                if not name.endswith("_transforms"):
                    continue
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict) and isinstance(item.get(TARGET), str) and MODE not in item:
                        obj = locate_target(item[TARGET])[0]
                        if callable(obj) and not inspect.isclass(obj):
                            item[MODE] = "callable"
    return data


def find_project(loaded: LoadedConfig, value: Any, *, cwd_fallback: bool = True) -> Path:
    """The absolute `project` directory. A relative path is resolved against the folder of the file that declares
    it; the current directory is a fallback (upstream configs rely on it) only where that folder does not exist.

    Both existing and differing is refused: the current directory is not the user's to trust (a shared scratch
    folder could plant a `project` there). `cwd_fallback` off (sweeps) makes the result independent of the cwd.
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
    if path.is_absolute():
        if path.is_dir():
            return path.resolve()
        raise ConfigError(f"directory '{value}' does not exist", key="project", location=where)
    declared = Path(where.file).parent / path if where is not None and where.file is not None else None
    in_cwd = Path.cwd() / path
    if declared is not None and declared.is_dir():
        if cwd_fallback and in_cwd.is_dir() and in_cwd.resolve() != declared.resolve():
            raise ConfigError(
                f"'{value}' names two different folders: {declared.resolve()} (next to the config file) and "
                f"{in_cwd.resolve()} (in the current directory)",
                key="project",
                location=where,
                suggestion="Give an absolute path, or run from another directory; lighter will not guess which "
                "folder's code to import.",
            )
        return declared.resolve()
    if (cwd_fallback or declared is None) and in_cwd.is_dir():
        return in_cwd.resolve()
    tried = [declared] if declared is not None else []
    tried += [in_cwd] if cwd_fallback or declared is None else []
    raise ConfigError(
        f"directory '{value}' does not exist (tried {', '.join(map(str, tried))})",
        key="project",
        location=where,
        suggestion="A relative `project:` is resolved next to the file that declares it"
        + ("." if not cwd_fallback else ", then in the current directory."),
    )


def import_project(folder: Path) -> None:
    """Import `folder` as the package `project`, replacing any earlier one."""
    for name in [m for m in sys.modules if m == PROJECT_MODULE or m.startswith(PROJECT_MODULE + ".")]:
        del sys.modules[name]
    init = folder / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(PROJECT_MODULE, init, submodule_search_locations=[str(folder)])
    else:
        spec = importlib.machinery.ModuleSpec(PROJECT_MODULE, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
    module = importlib.util.module_from_spec(spec)
    sys.modules[PROJECT_MODULE] = module
    if spec.loader is not None:
        spec.loader.exec_module(module)


def _unexpected_keyword(error: BaseException) -> str | None:
    match = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    return match[1] if match else None


def _signature_hint(target: Any, wrong: str | None, written: str | None = None) -> str | None:
    """The accepted parameter names closest to a wrong keyword argument."""
    if wrong is None or target is None:
        return None
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    named = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]
    if any(p.kind is p.VAR_POSITIONAL and p.name == wrong for p in params):
        # `TensorDataset(*tensors)`: MONAI passes a `_target_`'s entries as keywords only.
        call = f"{written or getattr(target, '__qualname__', 'Target')}(@vars::a, @vars::b)"
        return (
            f"'{wrong}' is the *{wrong} of its signature: values passed by position, which the keys of a "
            f'`_target_` entry cannot give. Build it with an expression instead: "${call}".'
        )
    accepted = f"It accepts: {', '.join(named)}." if named else "It accepts no keyword arguments."
    hint = did_you_mean(wrong, named)
    return f"{hint} {accepted}" if hint else accepted


def instantiation_error(
    key: str, item: Any, error: BaseException, data: dict[str, Any], loaded: LoadedConfig
) -> ConfigError:
    """Turn MONAI's 'Failed to instantiate/evaluate' into the key path, the target and the original error."""
    from lighter.config.monai_bundle import ConfigExpression  # lazy: MONAI imports torch

    cause = error.__cause__ if isinstance(error, RuntimeError) and error.__cause__ is not None else error
    first, *more = str(cause).strip().splitlines() or [""]
    reason = f"{type(cause).__name__}: {first}" + (" (...; --debug shows the rest)" if more else "")
    config = item.get_config() if item is not None else None
    if item is not None and isinstance(item, ConfigExpression):
        written = lookup(data, key)  # MONAI has rewritten the @ids inside `config`; show the user's text
        return ConfigError(
            f"the expression {written if isinstance(written, str) else config!r} raised {reason}",
            key=key,
            location=loaded.where(key),
            suggestion="Fix the expression; ids inside it are written @id.",
        )
    if isinstance(cause, KeyedError):
        return ConfigError(cause.message, key=cause.key, location=loaded.where(cause.key), suggestion=cause.suggestion)
    target = config.get(TARGET) if isinstance(config, dict) else None
    obj = locate_target(target)[0] if isinstance(target, str) else None
    wrong = _unexpected_keyword(cause)
    if wrong is not None and key_exists(data, f"{key}{SEP}{wrong}"):
        key = f"{key}{SEP}{wrong}"  # point at the offending argument, wherever it was written
    return ConfigError(
        f"'{target}' rejected its arguments: {reason}" if target else reason,
        key=key,
        location=loaded.where(key),
        suggestion=_signature_hint(obj, wrong, target),
    )


class _Items(dict):
    """The resolver's items. Inside a nested resolution `items()` is empty: see `make_parser`."""

    nested = False

    def items(self) -> Any:
        return () if self.nested else super().items()


def make_parser(data: dict[str, Any], loaded: LoadedConfig) -> Any:
    """A MONAI ConfigParser over `data`, whose failures name the key that failed.

    Two changes keep resolution linear in the number of items, with the same results as MONAI's:
    - MONAI's `_resolve_one_item` scans every item for `$import` statements, once per item it resolves. The
      outermost call evaluates them all and no item is added while resolving, so nested calls skip the scan.
    - The locator looks up bare names (`UNet`) in its table of MONAI's modules; a dotted `_target_` is never
      in it, so it skips building the table, and MONAI's package import too (`lighter.config.monai_bundle`).
    """
    from lighter.config.monai_bundle import ComponentLocator, ConfigParser, ReferenceResolver, load_all  # lazy

    class _Locator(ComponentLocator):
        def get_component_module_name(self, name: str) -> Any:
            if isinstance(name, str) and "." in name:
                return None
            load_all()  # a bare name is found among MONAI's loaded modules: load them
            return super().get_component_module_name(name)

    class _Resolver(ReferenceResolver):
        def reset(self) -> None:
            super().reset()
            self.items = _Items()

        # MONAI resolves depth first, so the innermost failing id is wrapped first; outer ids pass it on.
        def _resolve_one_item(self, id: str, waiting_list: set[str] | None = None, **kwargs: Any) -> Any:
            outer = self.items.nested
            self.items.nested = waiting_list is not None
            try:
                return super()._resolve_one_item(id, waiting_list, **kwargs)
            except ConfigError:
                raise
            except Exception as err:
                item = self.items.get(self.normalize_id(id))
                raise instantiation_error(self.normalize_id(id), item, err, data, loaded) from err
            finally:
                self.items.nested = outer

    parser = ConfigParser(copy.deepcopy(data))
    parser.locator = _Locator()
    parser.ref_resolver = _Resolver()
    parser.ref_resolver.reset()
    return parser
