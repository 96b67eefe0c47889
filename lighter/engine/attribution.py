"""Which part of the user's config an error belongs to: the key path, its `_target_`, and the file and line.

Every component the config built is known by its key (`component_keys`, filled in when a stage is instantiated).
An error raised while a stage runs is walked back through its traceback to the innermost frame whose `self` is one
of those components (`culprit`); the error keeps its type and traceback and gains a note and a
`lighter_component` attribute, which `lighter.engine.exits` prints first. A batch accessor that does not fit the
data is the config's own mistake, so it becomes a ConfigError at its key instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from lighter.adapters import BatchAccessError
from lighter.config.loader import LoadedConfig, lookup
from lighter.errors import ConfigError
from lighter.names import SEP, TARGET


def component_keys(parser: Any) -> dict[int, str]:
    """id(built object) -> its key, for every component the parser has built."""
    config = parser.get()
    keys = {}
    for key, obj in parser.ref_resolver.resolved_content.items():
        node = lookup(config, key, None)
        if isinstance(node, dict) and TARGET in node and obj is not None:
            keys.setdefault(id(obj), key)
    return keys


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
    target = lookup(loaded.data, f"{key}{SEP}{TARGET}", None)
    where = loaded.where(key)
    return key + (f" ({target})" if isinstance(target, str) else "") + (f" {where}" if where else "")


@contextlib.contextmanager
def batch_errors_name_their_key(loaded: LoadedConfig) -> Iterator[None]:
    """A batch accessor that does not fit the data is a config mistake: name its key and where it was written."""
    try:
        yield
    except BatchAccessError as err:
        if err.mode is None:
            raise
        key = SEP.join(["system", "adapters", err.mode, "batch", f"{err.role}_accessor"])
        raise ConfigError(err.message, key=key, location=loaded.where(key), suggestion=err.hint) from err


@contextlib.contextmanager
def errors_name_their_component(
    components: dict[int, str], loaded: LoadedConfig, *, trainer: Any, system: Any
) -> Iterator[None]:
    """An error raised at run time keeps its type and traceback (a run that fails is recorded as failed, exit 1);
    when it passed through a component the config built, a note names that component's key, and the CLI prints
    that line first. The trainer, and lighter's System, wrap every call, so they name nothing."""
    from lighter.system import System  # lazy: imports Lightning; `lighter show` imports the engine and must not

    try:
        yield
    except ConfigError:
        raise
    except Exception as err:
        skip = {id(trainer)} | ({id(system)} if isinstance(system, System) else set())
        found = culprit(err, components, skip)
        if found is not None and not peer_failed(err):
            where = describe(found[0], loaded)
            err.lighter_component = where  # type: ignore[attr-defined]
            err.add_note(f"lighter: raised in {where}")
        raise
