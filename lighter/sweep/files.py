"""Small files that other processes read while we write them: atomic replacement, a short lock, fast YAML."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from lighter.utils.atomic import replacing

# libyaml when PyYAML has it: dumping a thousand trial configs in pure Python alone takes seconds.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def load(path: Path) -> Any:
    """The YAML in `path`, or None when the file does not exist."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    return yaml.load(text, Loader=_Loader)


def write_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Replace `path` so a reader sees the old file or the new one, never a part.

    `durable` also fsyncs the data first, for records a crash must not lose (a trial's status). Configs that
    expansion can always write again skip it: a thousand fsyncs are most of the time of expanding a sweep.
    """
    with replacing(path, durable=durable) as f:
        f.write(text)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for one read-modify-write; the OS frees it if we die."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
