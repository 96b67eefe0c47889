"""Check every `monitor:` of a checkpoint, early-stopping or plateau scheduler against what the System logs.

A monitored name that is never logged only fails once the first epoch ends, as Lightning's traceback; here it
fails before the Trainer starts, with the key path, the file and line, and the nearest logged name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from lighter.config.loader import LoadedConfig
from lighter.config.tree import walk
from lighter.errors import ConfigError, did_you_mean
from lighter.names import EPOCH, EXPR, MACRO, REF, SEP, STAGE_MODES, STEP, Mode, Stage

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


def could_log(callback: Any) -> bool:
    """Whether a callback might put names in `trainer.callback_metrics` (what monitors read): the user's own may;
    Lightning's and lighter's do not (LearningRateMonitor and DeviceStatsMonitor write to the logger only)."""
    module = type(callback).__module__
    return not module.startswith(_SILENT_MODULES)


_SILENT_MODULES = ("pytorch_lightning.", "lightning.", "lighter.")


def check_monitors(
    config: dict[str, Any], system: Any, stage: Stage, loaded: LoadedConfig, callbacks: list[Any] = ()
) -> None:
    """Raise a ConfigError for a monitor that nothing will log during the fit, before the Trainer starts.

    Names in the System's namespaces (`train/`, `val/`, `test/`) must be ones it logs. Other names (upstream's
    `val_acc`) are refused too, unless the System is a subclass or a callback of the user's own could log them.
    """
    from lighter.system import System  # lazy: imports Lightning; `lighter show` must not

    if stage is not Stage.FIT or not isinstance(system, System):
        return
    modes = [m for m in STAGE_MODES[stage] if m is not Mode.VAL or Mode.VAL.value in system.dataloaders]
    names, prefixes = system.logged_names(modes)
    others_may_log = type(system) is not System or any(could_log(cb) for cb in callbacks)
    for key, name in monitors(config):
        if name in names:
            continue
        if not name.startswith(_SYSTEM_NAMESPACES):
            if others_may_log:
                continue
            raise ConfigError(
                f"monitors '{name}', which nothing logs during `lighter fit`: the System logs names under "
                f"{', '.join(_SYSTEM_NAMESPACES)} and no configured callback logs others",
                key=key,
                location=loaded.where(key),
                suggestion=_suggestion(name, names, modes),
            )
        if name.startswith(prefixes) and name.endswith((f"/{STEP}", f"/{EPOCH}")):
            continue  # a sub-loss: its key is only known once the criterion has run
        raise ConfigError(
            f"monitors '{name}', which is never logged during `lighter fit`",
            key=key,
            location=loaded.where(key),
            suggestion=_suggestion(name, names, modes),
        )


def check_logged(config: dict[str, Any], logged: Mapping[str, Any], loaded: LoadedConfig, callbacks: list[Any]) -> None:
    """After `lighter check`'s batch: every monitor must be a name that was logged (`trainer.callback_metrics`).

    A callback of the user's own does not run in check's throwaway Trainer, so names outside the System's
    namespaces are left to it when there is one.
    """
    others_may_log = any(could_log(cb) for cb in callbacks)
    names = set(logged)
    for key, name in monitors(config):
        if name in names or (others_may_log and not name.startswith(_SYSTEM_NAMESPACES)):
            continue
        raise ConfigError(
            f"monitors '{name}', which was not logged by a training and a validation batch",
            key=key,
            location=loaded.where(key),
            suggestion=_suggestion(name, names, list(Mode)),
        )


def _similar(name: str, names: set[str]) -> list[str]:
    """Logged names whose words start with the monitor's words, mode first (`val_acc`: `val/metrics/Accuracy/epoch`)."""
    words = [w.lower() for w in _WORDS.split(name) if w]
    found = []
    for candidate in sorted(names):
        theirs = [w.lower() for w in _WORDS.split(candidate) if w]
        if words and theirs and words[0] == theirs[0] and all(any(t.startswith(w) for t in theirs) for w in words[1:]):
            found.append(candidate)
    epoch = [n for n in found if n.endswith(f"/{EPOCH}")]
    return (epoch or found)[:3]


_WORDS = re.compile(r"[/_\-.]+|(?<=[a-z])(?=[A-Z])")


def _suggestion(name: str, names: set[str], modes: list[Mode]) -> str:
    epoch_names = sorted(n for n in names if n.endswith(f"/{EPOCH}"))
    # `val/loss` or `val/loss_epoch` (Lightning's own suffix) most likely means `val/loss/epoch`.
    stem = name.removesuffix(f"_{EPOCH}").removesuffix(f"_{STEP}").rstrip("/")
    guess = f"Did you mean '{stem}/{EPOCH}'?" if f"{stem}/{EPOCH}" in names else None
    similar = _similar(name, names)
    if guess is None and similar:
        guess = "Did you mean " + " or ".join(repr(n) for n in similar) + "?"
    guess = guess or did_you_mean(name, epoch_names) or did_you_mean(name, names)
    if name.startswith(f"{Mode.VAL.value}/") and Mode.VAL not in modes:
        guess = "Nothing is validated: add system::dataloaders::val, or monitor a train/ name."
    listed = ", ".join(epoch_names) or "nothing"
    return f"{guess + ' ' if guess else ''}Logged per epoch: {listed} (and each with /step instead of /epoch)."
