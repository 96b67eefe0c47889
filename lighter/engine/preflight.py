"""Checks on the built objects before a stage's loop starts: what Lightning would only find out mid-run."""

from __future__ import annotations

from typing import Any

from lighter.config.loader import LoadedConfig, lookup
from lighter.errors import ConfigError


def check_loggers(trainer: Any, loaded: LoadedConfig) -> None:
    """Lightning takes any iterable as a list of loggers: `logger: csv` would fail at the first log call."""
    from pytorch_lightning.loggers import Logger  # lazy: Lightning, not for show/status

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
