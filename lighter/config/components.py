"""What each part of a config must be, checked before anything is built.

`check_shapes` imports nothing, so `lighter show` runs it too: `_target_` is a dotted name, a criterion is one
component, a scheduler is not a number, a logger is not a word, the seed is a valid seed. `check_stage_parts`
asks that the stage has what it runs (its dataloaders, and for fit a criterion and an optimizer), on the pruned
config. `check_kinds` imports the targets and checks that a criterion can be called, a scheduler is an LR
scheduler, an optimizer an optimizer and a model a module.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from lighter.config.loader import LoadedConfig, lookup
from lighter.config.targets import locate_target, target_problem
from lighter.config.tree import is_code, is_lighter_system, walk
from lighter.errors import ConfigError
from lighter.names import DISABLED, MODE, SEP, STAGE_MODES, TARGET, Mode, Stage

SEED_RANGE = (0, 2**32 - 1)  # what Lightning's seed_everything (numpy's generator) accepts
_MISSING = object()
_COMPONENT = "component (a mapping with `_target_`), an @reference or a $expression"
_LOGGER_EXAMPLE = "{_target_: pytorch_lightning.loggers.CSVLogger, save_dir: runs}"


def _error(loaded: LoadedConfig, key: str, message: str, suggestion: str | None) -> ConfigError:
    """Located at `key`, or for a key that is not there, at its nearest ancestor that is."""
    if key in loaded.sources and lookup(loaded.data, key, _MISSING) is _MISSING:
        return ConfigError(message, key=key, location=loaded.sources[key], suggestion=suggestion)  # `~key`
    written = key
    while SEP in written and lookup(loaded.data, written, _MISSING) is _MISSING:
        written = written.rpartition(SEP)[0]
    return ConfigError(message, key=key, location=loaded.where(written), suggestion=suggestion)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"the {type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


# ---- shapes: no imports ------------------------------------------------------------------------------------
def check_target_names(config: dict[str, Any], loaded: LoadedConfig) -> None:
    """Every `_target_` is a dotted import path (or a reference or expression)."""
    for key, value in walk(config):
        if not isinstance(value, dict) or TARGET not in value:
            continue
        why = target_problem(value[TARGET])
        if why:
            target_key = f"{key}{SEP}{TARGET}"
            raise _error(
                loaded,
                target_key,
                f"`_target_` {why}",
                "Write the full import path of a class or function, e.g. torch.nn.Linear or project.models.Net "
                "(the `project` folder is imported as the package `project`).",
            )


def _one_component(value: Any, *, allow_dict: bool = True) -> bool:
    return value is None or is_code(value) or (allow_dict and isinstance(value, dict))


# key -> (is the value acceptable, what it must be, how to fix it)
_Shape = tuple[Callable[[Any], bool], str, str]
_SYSTEM_SHAPES: dict[str, _Shape] = {
    "model": (_one_component, "a " + _COMPONENT, "e.g. {_target_: torch.nn.Linear, in_features: 4, out_features: 2}"),
    "criterion": (
        _one_component,
        "one " + _COMPONENT,
        "A criterion is one callable, e.g. {_target_: torch.nn.CrossEntropyLoss}; to combine losses, write a "
        "module that adds them and name it here.",
    ),
    "optimizer": (_one_component, "a " + _COMPONENT, "e.g. {_target_: torch.optim.Adam, params: ..., lr: 0.001}"),
    "scheduler": (
        _one_component,
        "a " + _COMPONENT + ", or Lightning's dict {scheduler: ..., interval: epoch}",
        "e.g. {_target_: torch.optim.lr_scheduler.StepLR, optimizer: '@system::optimizer', step_size: 5}",
    ),
    "inferer": (_one_component, "a " + _COMPONENT, "e.g. {_target_: monai.inferers.SimpleInferer}"),
}


def _logger_ok(value: Any) -> bool:
    if value is None or isinstance(value, (bool, dict)) or is_code(value):
        return True
    return isinstance(value, list) and all(isinstance(v, dict) or is_code(v) for v in value)


def _callbacks_ok(value: Any) -> bool:
    return _logger_ok(value) and not isinstance(value, bool)


_TRAINER_SHAPES: dict[str, _Shape] = {
    "logger": (
        _logger_ok,
        "a logger component, a list of them, true (Lightning's default logger) or false (none)",
        f"e.g. logger: {_LOGGER_EXAMPLE}",
    ),
    "callbacks": (
        _callbacks_ok,
        "a list of callback components",
        "e.g. callbacks: [{_target_: pytorch_lightning.callbacks.ModelCheckpoint, monitor: val/loss}]",
    ),
}


def _check_table(node: Any, table: dict[str, _Shape], parent: str, loaded: LoadedConfig) -> None:
    if not isinstance(node, dict):
        return
    for name, (ok, what, fix) in table.items():
        value = node.get(name, _MISSING)
        if value is not _MISSING and not ok(value):
            raise _error(loaded, f"{parent}{SEP}{name}", f"must be {what}, not {_describe(value)}", fix)


def check_scheduler_dict(system: dict[str, Any], loaded: LoadedConfig) -> None:
    scheduler = system.get("scheduler")
    if isinstance(scheduler, dict) and TARGET not in scheduler and "scheduler" not in scheduler:
        raise _error(
            loaded,
            "system::scheduler",
            "has no `_target_` and no `scheduler` key",
            "Give a scheduler component, or Lightning's dict: {scheduler: {_target_: ...}, interval: epoch}.",
        )


def check_seed(value: Any, loaded: LoadedConfig | None = None) -> None:
    """A seed is a whole number in Lightning's range; `None` means unseeded."""
    low, high = SEED_RANGE
    if value is None or is_code(value):
        return  # resolved later; the runner checks the resolved value
    whole = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and value.is_integer():
        whole, value = True, int(value)
    if whole and low <= value <= high:
        return
    shown = value if whole else repr(value)
    why = "is out of range" if whole else "is not a whole number"
    raise ConfigError(
        f"the seed {shown} {why}: a seed is a whole number from {low} to {high}",
        key="seed",
        location=loaded.where("seed") if loaded is not None else None,
        suggestion="e.g. seed: 42, or leave `seed` out for an unseeded run.",
    )


def check_shapes(config: dict[str, Any], loaded: LoadedConfig) -> None:
    """What can be checked without importing anything."""
    check_target_names(config, loaded)
    check_seed(config.get("seed"), loaded)
    for name in ("trainer", "system"):
        value = config.get(name)
        if value is not None and not isinstance(value, dict) and not is_code(value):
            raise _error(loaded, name, f"must be a mapping of its settings, not {_describe(value)}", None)
    _check_table(config.get("trainer"), _TRAINER_SHAPES, "trainer", loaded)
    if is_lighter_system(config):
        _check_table(config["system"], _SYSTEM_SHAPES, "system", loaded)
        check_scheduler_dict(config["system"], loaded)
        for part in ("dataloaders", "metrics", "adapters"):
            value = config["system"].get(part)
            if value is not None and not isinstance(value, dict) and not is_code(value):
                raise _error(
                    loaded,
                    f"system{SEP}{part}",
                    f"must be a mapping of modes (train, val, test, predict), not {_describe(value)}",
                    f"e.g. {part}: {{train: ..., val: ...}}",
                )


# ---- the stage's parts, on the pruned config ---------------------------------------------------------------
def _present(value: Any) -> bool:
    return value is not None and value is not _MISSING and not (isinstance(value, dict) and value.get(DISABLED) is True)


def check_stage_parts(pruned: dict[str, Any], loaded: LoadedConfig, stage: Stage) -> None:
    """The stage's dataloaders, and for fit a criterion and an optimizer, exist before any Trainer does."""
    command = f"`lighter {stage.value}`"
    if not is_lighter_system(pruned):
        return
    system = pruned["system"]
    if not _present(system.get("model", _MISSING)):
        raise _error(loaded, "system::model", f"{command} needs a model", _SYSTEM_SHAPES["model"][2].capitalize())
    loaders = system.get("dataloaders")
    for mode in STAGE_MODES[stage]:
        if stage is Stage.FIT and mode is Mode.VAL:
            continue  # fit without validation is legitimate
        if is_code(loaders) or _present(lookup(loaders or {}, mode.value, None) if isinstance(loaders, dict) else None):
            continue
        key = f"system::dataloaders::{mode.value}"
        raise _error(
            loaded,
            key,
            f"{command} needs a `{mode.value}` dataloader",
            f"Add one under {key}: {{_target_: torch.utils.data.DataLoader, dataset: ..., batch_size: 32}}.",
        )
    if stage is Stage.FIT:
        for name, example in (
            ("criterion", "{_target_: torch.nn.CrossEntropyLoss}"),
            ("optimizer", "{_target_: torch.optim.Adam, params: '$@system::model.parameters()', lr: 0.001}"),
        ):
            if not _present(system.get(name)):
                raise _error(loaded, f"system::{name}", f"{command} needs a {name} to train", f"e.g. {example}")


def check_has_system(pruned: dict[str, Any], loaded: LoadedConfig, stage: Stage) -> None:
    """A run needs a `system`; a config without one can still be read, shown and validated (parts for others)."""
    if not _present(pruned.get("system")):
        raise _error(
            loaded,
            "system",
            f"`lighter {stage.value}` needs a `system`",
            "Add `system:` with `_target_: lighter.System`.",
        )


# ---- kinds: import the targets -----------------------------------------------------------------------------
def _target_of(node: Any) -> tuple[Any, str] | None:
    """(the imported target, its text) of a component that calls a class, else None."""
    if not isinstance(node, dict) or not isinstance(node.get(TARGET), str) or is_code(node[TARGET]):
        return None
    if node.get(DISABLED) is True or node.get(MODE) not in (None, "default"):
        return None  # a `callable`/`partial` component is not called at build time: its result is not an instance
    obj, why = locate_target(node[TARGET])
    return (obj, node[TARGET]) if why is None and inspect.isclass(obj) else None


def _calls(cls: type) -> bool:
    return any("__call__" in vars(k) for k in cls.__mro__ if k is not object)


def _kinds() -> dict[str, tuple[Callable[[type], bool], str, str]]:
    import torch  # lazy: `lighter sweep expand|status` import the config checks, never torch

    return {
        "model": (lambda c: issubclass(c, torch.nn.Module), "a torch.nn.Module", "e.g. torch.nn.Linear"),
        "criterion": (_calls, "callable as criterion(pred, target)", "e.g. torch.nn.CrossEntropyLoss"),
        "optimizer": (
            lambda c: issubclass(c, torch.optim.Optimizer),
            "a torch.optim.Optimizer",
            "e.g. torch.optim.Adam",
        ),
        "scheduler": (
            lambda c: issubclass(c, torch.optim.lr_scheduler.LRScheduler),
            "an LR scheduler (torch.optim.lr_scheduler)",
            "e.g. torch.optim.lr_scheduler.StepLR, or Lightning's dict {scheduler: ..., interval: epoch}",
        ),
    }


def check_kinds(pruned: dict[str, Any], loaded: LoadedConfig) -> None:
    """The classes of the model, criterion, optimizer and scheduler are of the right kind."""
    if not is_lighter_system(pruned):
        return
    system = pruned["system"]
    for name, (ok, what, example) in _kinds().items():
        key, node = f"system{SEP}{name}", system.get(name)
        if name == "scheduler" and isinstance(node, dict) and TARGET not in node:
            key, node = f"{key}{SEP}scheduler", node.get("scheduler")  # Lightning's dict
        found = _target_of(node)
        if found is not None and not ok(found[0]):
            target_key = f"{key}{SEP}{TARGET}"
            raise _error(loaded, target_key, f"'{found[1]}' is not {what}", f"Name a class that is, {example}.")
