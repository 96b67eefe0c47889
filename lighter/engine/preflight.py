"""Checks on the built objects before a stage's loop starts, and naming the component a run's error came from."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from lighter.config.loader import LoadedConfig, lookup
from lighter.errors import ConfigError
from lighter.names import TARGET


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
    from lighter.callbacks.writer import CALLBACKS_KEY, SampleWriter  # lazy: imports Lightning; `lighter show` must not

    for callback in trainer.callbacks:
        if isinstance(callback, SampleWriter):
            problem = callback.path_problem()
            if problem is not None:
                key = components.get(id(callback), CALLBACKS_KEY)
                path_key = f"{key}::path" if lookup(loaded.data, f"{key}::path", None) is not None else key
                raise ConfigError(problem[0], key=path_key, location=loaded.where(path_key), suggestion=problem[1])


def peer_failed(err: BaseException) -> bool:
    """A collective broke because another rank died: that rank reports the cause."""
    text = str(err)
    return type(err).__name__ in ("DistBackendError", "DistNetworkError") or any(
        phrase in text for phrase in ("Connection closed by peer", "Connection reset by peer", "Broken pipe")
    )


def culprit(error: BaseException, components: dict[int, str], skip: set[int]) -> tuple[str, Any] | None:
    """(key, object) of the innermost component whose method the error passed through; `skip` holds the ids of
    the objects that wrap every call (the Trainer, lighter's System)."""
    found = None
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        key = components.get(id(owner)) if owner is not None and id(owner) not in skip else None
        if key is not None:
            found = (key, owner)
        tb = tb.tb_next
    return found


def describe(key: str, loaded: LoadedConfig) -> str:
    """'key (target) at file:line'."""
    target = lookup(loaded.data, f"{key}::{TARGET}", None)
    where = loaded.where(key)
    return key + (f" ({target})" if isinstance(target, str) else "") + (f" {where}" if where else "")
