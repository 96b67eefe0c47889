"""Check every `monitor:` of a checkpoint, early-stopping or plateau scheduler against what the System logs.

A monitored name that is never logged only fails once the first epoch ends, as Lightning's traceback; here it
fails before the Trainer starts, with the key path, the file and line, and the nearest logged name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lighter.config.errors import ConfigError, did_you_mean
from lighter.config.loader import LoadedConfig
from lighter.config.tree import walk
from lighter.keys import EPOCH, EXPR, MACRO, REF, SEP, STAGE_MODES, STEP, Mode, Stage

MONITOR = "monitor"
# Where monitors live: callbacks (ModelCheckpoint, EarlyStopping, ...) and a scheduler in Lightning's dict form.
OWNERS = ("trainer::callbacks", "system::scheduler")
_SYSTEM_NAMESPACES = tuple(f"{mode.value}/" for mode in Mode)


def monitors(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key path, name) of every literal `monitor:` below the owners."""
    for owner in OWNERS:
        head, _, rest = owner.partition(SEP)
        node = config.get(head, {})
        node = node.get(rest) if isinstance(node, dict) else None
        for key, value in walk(node, owner):
            if key.endswith(SEP + MONITOR) and isinstance(value, str) and not value.startswith((REF, EXPR, MACRO)):
                yield key, value


def check_monitors(config: dict[str, Any], system: Any, stage: Stage, loaded: LoadedConfig) -> None:
    """Raise a ConfigError for a monitor in the System's namespace (`train/`, `val/`, `test/`) that it never logs.

    Other names may come from other callbacks (`LearningRateMonitor`'s `lr-Adam`), so they pass.
    """
    from lighter.system import System

    if stage is not Stage.FIT or not isinstance(system, System):
        return
    modes = [m for m in STAGE_MODES[stage] if m is not Mode.VAL or Mode.VAL.value in system.dataloaders]
    names, prefixes = system.logged_names(modes)
    for key, name in monitors(config):
        if not name.startswith(_SYSTEM_NAMESPACES) or name in names:
            continue
        if name.startswith(prefixes) and name.endswith((f"/{STEP}", f"/{EPOCH}")):
            continue  # a sub-loss: its key is only known once the criterion has run
        raise ConfigError(
            f"monitors '{name}', which is never logged during `lighter fit`",
            key=key,
            location=loaded.where(key),
            suggestion=_suggestion(name, names, modes),
        )


def _suggestion(name: str, names: set[str], modes: list[Mode]) -> str:
    epoch_names = sorted(n for n in names if n.endswith(f"/{EPOCH}"))
    # `val/loss` or `val/loss_epoch` (Lightning's own suffix) most likely means `val/loss/epoch`.
    stem = name.removesuffix(f"_{EPOCH}").removesuffix(f"_{STEP}").rstrip("/")
    guess = f"Did you mean '{stem}/{EPOCH}'?" if f"{stem}/{EPOCH}" in names else None
    guess = guess or did_you_mean(name, epoch_names) or did_you_mean(name, names)
    if name.startswith(f"{Mode.VAL.value}/") and Mode.VAL not in modes:
        guess = "Nothing is validated: add system::dataloaders::val, or monitor a train/ name."
    listed = ", ".join(epoch_names) or "nothing"
    return f"{guess + ' ' if guess else ''}Logged per epoch: {listed} (and each with /step instead of /epoch)."
