"""A sweep's trial files never hold a secret: `config.yaml` and `trial.yaml` sit on disk until each trial runs.

A secret value in the cascade (or a secret-named axis) is refused at expansion, before anything is written; the
trial reads it at run time instead, from the environment or from a profile, as `lighter resume` does.
"""

from __future__ import annotations

from typing import Any

from lighter.config.loader import LoadedConfig
from lighter.errors import ConfigError, Location
from lighter.names import SEP
from lighter.sweep.axes import Axis
from lighter.sweep.cascade import Leaf
from lighter.tracking.secrets import find_secrets, holds_nothing, is_secret_key

_FIX = (
    "Trials never keep a secret on disk. Read it when the trial runs: `\"$os.environ['NAME']\"`, or put it in a "
    "profile and run the sweep with LIGHTER_PROFILE=NAME (each trial merges the profile as it starts)."
)


def refuse_secrets(loaded: LoadedConfig, leaf: Leaf, base: dict[str, Any], axes: list[Axis]) -> None:
    """Raise ConfigError at the first secret value the leaf's trials would write."""
    for axis in axes:
        if is_secret_key(axis.key.rsplit(SEP, 1)[-1]) and not all(holds_nothing(v) for v in axis.values):
            raise _refused(loaded, leaf, axis.written, "a sweep axis over a secret-named key holds secret values")
    masked = find_secrets(base).masked
    if masked:
        key = min(masked, key=lambda k: (loaded.where(k) is None, k))
        raise _refused(loaded, leaf, key, "holds a secret, which every trial's config.yaml would keep on disk")


def _refused(loaded: LoadedConfig, leaf: Leaf, key: str, message: str) -> ConfigError:
    location = loaded.where(key) or Location(str(leaf.file))
    return ConfigError(message, key=key, location=location, suggestion=_FIX)
