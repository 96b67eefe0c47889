"""Tracking: profiles, secrets that are never recorded, and the config handed to every logger as hyperparameters.

`profiles` finds and reads the user's profile files; `secrets` decides what is masked; `hparams` flattens a
config into names every tracker accepts; `loggers` knows each tracker (its extra, its run id, its artifacts);
`callback` hands the masked config to the loggers of a run. Nothing here imports a tracker until a run uses it.

`lighter.tracking.CometLogger` is Lightning's CometLogger where `online: false` logs offline (see `comet`).
"""

from importlib import import_module
from typing import Any

_LAZY = {"CometLogger": "lighter.tracking.comet"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lighter.tracking' has no attribute {name!r}")
