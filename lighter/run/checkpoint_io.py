"""Reading checkpoints safely, and writing them so that a kill never leaves half a file.

lighter's own reads use `torch.load(weights_only=True)`: tensors and plain data only, no code runs. The config that
trained a checkpoint is stored in it as plain data, so that suffices. A file that needs arbitrary unpickling is
refused; `LIGHTER_TRUST_CHECKPOINTS=1` loads it anyway, for files you trust as you would a script.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

from lighter.errors import ConfigError
from lighter.utils.atomic import replacing

TRUST_ENV = "LIGHTER_TRUST_CHECKPOINTS"
_PLAIN_WEIGHTS = "Load plain weights with `lighter.utils.weights.load_weights`, or name a .ckpt file Lightning saved."


def trusted() -> bool:
    return os.environ.get(TRUST_ENV, "") not in ("", "0")


def read_checkpoint(path: str | os.PathLike, *, key: str | None = None) -> dict[str, Any]:
    """A Lightning checkpoint as a dict, read without running code from it; ConfigError naming the file otherwise.

    `key` is the config key that named the file, for the message.
    """
    import torch  # lazy: torch, which `sweep status` never loads

    path = Path(path)

    def refuse(what: str, fix: str, cause: BaseException | None = None) -> ConfigError:
        err = ConfigError(f"checkpoint {path} {what}", key=key, suggestion=fix)
        err.__cause__ = cause
        return err

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise refuse("does not exist", "Point it at an existing .ckpt file.") from None
    if path.is_dir():
        raise refuse("is a directory, not a checkpoint file", "Name the .ckpt file inside it.")
    if size == 0:
        raise refuse("is empty (0 bytes)", "It was never written whole: use another checkpoint of the run.")
    with path.open("rb") as f:
        head = f.read(4)
    if head[:2] != b"PK" and not head.startswith(b"\x80"):
        raise refuse(
            "is not a PyTorch checkpoint (it starts with neither a zip nor a pickle header)",
            "Name a .ckpt file that Lightning saved.",
        )
    if head[:2] == b"PK" and not zipfile.is_zipfile(path):
        raise refuse(
            f"is truncated or corrupt ({size} bytes; its zip directory is missing)",
            "It was cut off while being written: use another checkpoint of the run.",
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=not trusted(), mmap=head[:2] == b"PK")
    except Exception as err:  # noqa: BLE001 - a damaged file fails anywhere in the unpickler; each is named below
        raise _unreadable(path, head, err, refuse) from err
    if not isinstance(data, dict):
        raise refuse(
            f"holds a bare {type(data).__name__}, not a Lightning checkpoint",
            _PLAIN_WEIGHTS,
        )
    if "state_dict" not in data:
        kind = "a plain state dict (tensors by parameter name)" if _all_tensors(data) else "a dict without `state_dict`"
        raise refuse(
            f"is {kind}, not a Lightning checkpoint",
            _PLAIN_WEIGHTS,
        )
    return data


def _unreadable(path: Path, head: bytes, err: Exception, refuse: Any) -> ConfigError:
    """Why torch could not load `path`: a corrupt file (checked against the zip's checksums first, since flipped
    bytes can look like an unknown class to the unpickler) or one that holds Python objects."""
    damaged = _damaged_member(path) if head[:2] == b"PK" else None
    if damaged is not None:
        return refuse(
            f"is corrupt: its part '{damaged}' fails its checksum (bytes changed after it was written)",
            "Use another checkpoint of the run.",
            err,
        )
    text = str(err)
    if isinstance(err, pickle.UnpicklingError) and ("Unsupported global" in text or "weights_only" in text):
        if "Unsupported operand" in text:  # not a class, an opcode no pickle has: damaged bytes
            return refuse(f"is corrupt ({_first_line(err)})", "Use another checkpoint of the run.", err)
        return refuse(
            "holds Python objects that only arbitrary unpickling can load, which can run any code",
            f"Load only files you trust: set {TRUST_ENV}=1 to allow it for this command.",
            err,
        )
    if isinstance(err, pickle.UnpicklingError):
        return refuse(f"is corrupt ({type(err).__name__}: {err})", "Use another checkpoint of the run.", err)
    return refuse(f"is truncated or corrupt ({_first_line(err)})", "Use another checkpoint of the run.", err)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _damaged_member(path: Path) -> str | None:
    """The first part of a zip checkpoint whose CRC does not match, or None (read only when loading failed)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        return f"(zip structure: {err})"


def _all_tensors(data: dict) -> bool:
    import torch  # lazy: torch, which `sweep status` never loads

    return bool(data) and all(isinstance(v, torch.Tensor) for v in data.values())


def atomic_checkpoint_io() -> Any:
    """A Lightning CheckpointIO that writes a local checkpoint whole or not at all.

    Lightning's own writes into a temporary file in the system's temp folder and moves it over; across file systems
    that move is a copy, which a kill can cut short. This one writes beside the target, flushes it to disk and renames.
    """
    import torch  # lazy: torch, which `sweep status` never loads
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO  # lazy: Lightning, not for show/status

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            if storage_options is not None or "://" in str(path):
                return super().save_checkpoint(checkpoint, path, storage_options)
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with replacing(path, "wb") as f:
                torch.save(checkpoint, f)

    return AtomicCheckpointIO()


def use_atomic_writes(trainer: Any) -> None:
    """Give the trainer's strategy the atomic CheckpointIO, unless the user configured a CheckpointIO of their own."""
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO  # lazy: Lightning, not for show/status

    current = trainer.strategy.checkpoint_io
    if type(current) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = atomic_checkpoint_io()
