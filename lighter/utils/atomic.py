"""Replace a file so that a reader sees the old one or the new one, never a part: a temporary file beside it, then
a rename. The one place lighter writes files that others read while it writes them (records, logs, checkpoints)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def replacing(
    path: Path, mode: str = "w", *, durable: bool = True, mtime_ns: int | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """Yield a file beside `path`; when the block ends without error, move it over `path`.

    `durable` flushes the data to disk before the rename, for files a crash must not lose (records, checkpoints);
    files that can be made again skip it. `mtime_ns` stamps the new file before it appears (caches keyed on mtime).
    """
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, newline=newline) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if mtime_ns is not None:
            os.utime(temp, ns=(mtime_ns, mtime_ns))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename itself survive a crash of the machine (where the OS lets a folder be synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
