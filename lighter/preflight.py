"""Checks on the built objects before a stage's loop starts, and naming the component a run's error came from."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from lighter.config.errors import ConfigError
from lighter.config.loader import LoadedConfig, lookup
from lighter.keys import TARGET

_FRAMEWORK = ("lighter.", "pytorch_lightning.", "lightning.")  # the System and the Trainer wrap every call


def component_keys(parser: Any) -> dict[int, str]:
    """id(built object) -> its key, for every component the parser has built."""
    config = parser.get()
    keys = {}
    for key, obj in parser.ref_resolver.resolved_content.items():
        node = lookup(config, key, None)
        if isinstance(node, dict) and TARGET in node and obj is not None:
            keys.setdefault(id(obj), key)
    return keys


def check_loggers(trainer: Any, components: dict[int, str], loaded: LoadedConfig) -> None:
    """Lightning takes any iterable as a list of loggers: `logger: csv` would fail at the first log call."""
    from pytorch_lightning.loggers import Logger

    for logger in trainer.loggers:
        if not isinstance(logger, Logger):
            key = "trainer::logger"
            raise ConfigError(
                f"is not a Lightning logger: got the {type(logger).__name__} {logger!r}",
                key=key,
                location=loaded.where(key),
                suggestion="Give a logger component, e.g. {_target_: pytorch_lightning.loggers.CSVLogger, "
                "save_dir: runs}, true for Lightning's default, or false for none.",
            )


def check_writers(trainer: Any, components: dict[int, str], loaded: LoadedConfig) -> None:
    """Every prediction writer can write where it is told: found before any prediction is computed."""
    from lighter.callbacks.writer import CALLBACKS_KEY, SampleWriter

    for callback in trainer.callbacks:
        if isinstance(callback, SampleWriter):
            problem = callback.path_problem()
            if problem is not None:
                key = components.get(id(callback), CALLBACKS_KEY)
                path_key = f"{key}::path" if lookup(loaded.data, f"{key}::path", None) is not None else key
                raise ConfigError(problem[0], key=path_key, location=loaded.where(path_key), suggestion=problem[1])


def culprit(error: BaseException, components: dict[int, str], loaded: LoadedConfig) -> str | None:
    """'key (target) at file:line' of the innermost user component whose method the error passed through."""
    found = None
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        key = components.get(id(owner)) if owner is not None else None
        if key is not None and not type(owner).__module__.startswith(_FRAMEWORK):
            found = key
        tb = tb.tb_next
    if found is None:
        return None
    target = lookup(loaded.data, f"{found}::{TARGET}", None)
    where = loaded.where(found)
    return f"{found}" + (f" ({target})" if isinstance(target, str) else "") + (f" {where}" if where else "")
