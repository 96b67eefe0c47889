"""`load_weights`: put a checkpoint's tensors into a model, by name, saying what matched and what did not."""

from __future__ import annotations

import pickle
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from lighter.errors import did_you_mean
from lighter.utils.log import get_logger

log = get_logger(__name__)
LIGHTNING_STATE = "state_dict"  # where a Lightning checkpoint keeps the LightningModule's tensors
_SHOWN = 5  # how many keys an error or a log line lists


def _listing(keys: Sequence[str], n: int = _SHOWN) -> str:
    more = f", ... ({len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def read_state(path: str | Path, weights_only: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of a Lightning checkpoint (its `state_dict`), a plain state dict or a saved module."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_weights: {path} does not exist. Check `path`, relative to the current folder.")
    with path.open("rb") as f:
        head = f.read(4)
    if not head:
        raise ValueError(f"load_weights: {path} is empty (0 bytes): it was never written whole. Use another file.")
    if head[:2] != b"PK" and not head.startswith(b"\x80"):
        raise ValueError(
            f"load_weights: {path} is not a PyTorch file (it starts with neither a zip nor a pickle header). "
            "Name a file saved with torch.save or by Lightning."
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as err:  # noqa: BLE001 - a damaged file fails anywhere in the unpickler
        objects = isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err)
        if objects and weights_only and not _damaged(path):
            raise ValueError(
                f"load_weights: {path} holds more than tensors, and loading it would run code from the file. "
                "If you trust it, set `weights_only: false`."
            ) from err
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ValueError(f"load_weights: {path} is truncated or corrupt ({first}). Use another file.") from err
    if isinstance(loaded, nn.Module):
        return loaded.state_dict()
    if isinstance(loaded, Mapping) and isinstance(loaded.get(LIGHTNING_STATE), Mapping):
        loaded = loaded[LIGHTNING_STATE]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        keys = list(loaded)[:_SHOWN] if isinstance(loaded, Mapping) else type(loaded).__name__
        raise ValueError(
            f"load_weights: {path} is neither a Lightning checkpoint nor a state dict of tensors (found {keys})."
        )
    return dict(loaded)


def _damaged(path: Path) -> bool:
    """Whether a zip-format file fails its checksums (flipped bytes can look like an unknown class)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is not None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return True


def _rename(key: str, strip_prefix: str | None, remap: Mapping[str, str]) -> str | None:
    if strip_prefix:
        if not key.startswith(strip_prefix):
            return None  # another module's tensor, e.g. the criterion's in a Lightning checkpoint
        key = key[len(strip_prefix) :]
    for old in sorted(remap, key=len, reverse=True):  # the longest matching prefix wins
        if key.startswith(old):
            return remap[old] + key[len(old) :]
    return key


def _in_layer(key: str, layer: str) -> bool:
    return key == layer or key.startswith(layer if layer.endswith(".") else f"{layer}.")


def _shared_prefix(longer: Sequence[str], shorter: Sequence[str]) -> str | None:
    """The most common `prefix.` such that `prefix.` + a key of `shorter` is a key of `longer`."""
    wanted = set(shorter)
    counts: Counter[str] = Counter()
    for key in longer:
        for i, ch in enumerate(key):
            if ch == "." and key[i + 1 :] in wanted:
                counts[key[: i + 1]] += 1
    return counts.most_common(1)[0][0] if counts else None


def _prefix_hint(source: Sequence[str], target: Sequence[str]) -> str:
    """Which strip_prefix or remap would line the checkpoint's keys up with the model's."""
    prefix = _shared_prefix(source, target)  # checkpoint key = prefix + model key
    if prefix:
        return f"The checkpoint's keys look like the model's behind {prefix!r}: set `strip_prefix: {prefix}`."
    prefix = _shared_prefix(target, source)  # model key = prefix + checkpoint key
    if prefix:
        return f"The model's keys look like the checkpoint's behind {prefix!r}: set `remap: {{'': {prefix}}}`."
    return "Use strip_prefix or remap to turn the checkpoint's names into the model's."


def load_weights(
    model: nn.Module,
    path: str | Path,
    strip_prefix: str | None = None,
    remap: Mapping[str, str] | None = None,
    skip: str | Sequence[str] | None = None,
    strict: bool = False,
    weights_only: bool = True,
) -> nn.Module:
    """Load tensors from `path` into `model` by name and return the model.

    ```yaml
    model:
      _target_: lighter.utils.load_weights
      model: {_target_: project.models.Net, num_classes: 5}
      path: runs/pretrain/checkpoints/best.ckpt
      strip_prefix: model.          # a Lightning checkpoint of lighter.System names its tensors model.*
      remap: {backbone.: encoder.}  # then rename prefixes, longest first
      skip: [head.4]                # layers left as initialised, e.g. a new classifier head
    ```

    Args:
        strip_prefix: only checkpoint tensors under this prefix are used, without it.
        remap: old prefix -> new prefix, after stripping; `{'': 'encoder.'}` adds a prefix to every key.
        skip: model layer names (or tensor names) not to load.
        strict: raise on any model tensor left unloaded or checkpoint tensor left unused, instead of logging them.
        weights_only: refuse checkpoints that hold objects other than tensors and plain containers.
    """
    source = read_state(path, weights_only=weights_only)
    remap = dict(remap or {})
    skip = [skip] if isinstance(skip, str) else list(skip or [])
    target = model.state_dict()

    renamed: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        new = _rename(key, strip_prefix, remap)
        if new is not None:
            renamed[new] = value
    for layer in skip:
        if not any(_in_layer(k, layer) for k in target):
            layers = [name for name, _ in model.named_modules() if name] + list(target)
            hint = did_you_mean(layer, layers, fallback=f"Model keys: {_listing(list(target))}.")
            raise ValueError(f"load_weights skip: {layer!r} is no layer or tensor of the model. {hint}")
    skipped = [k for k in renamed if any(_in_layer(k, layer) for layer in skip)]
    for key in skipped:
        del renamed[key]

    matched = [k for k in renamed if k in target]
    if not matched:
        raise ValueError(
            f"load_weights: no tensor in {path} matches a model tensor by name. "
            f"Checkpoint keys{' after renaming' if strip_prefix or remap else ''}: {_listing(list(renamed))}; "
            f"model keys: {_listing(list(target))}. {_prefix_hint(list(source), list(target))}"
        )
    mismatched = [k for k in matched if renamed[k].shape != target[k].shape]
    if mismatched:
        shapes = "; ".join(f"{k}: {tuple(renamed[k].shape)} vs {tuple(target[k].shape)}" for k in mismatched[:_SHOWN])
        layers = sorted({k.rsplit(".", 1)[0] for k in mismatched})
        raise ValueError(
            f"load_weights: {len(mismatched)} tensors differ in shape (checkpoint vs model): {shapes}. "
            f"To keep those layers as initialised, add `skip: {layers}`."
        )
    unexpected = [k for k in renamed if k not in target]
    loaded = set(matched)
    missing = [k for k in target if k not in loaded and not any(_in_layer(k, layer) for layer in skip)]
    if strict and (missing or unexpected):
        raise ValueError(
            f"load_weights (strict): {len(missing)} model tensors not in the checkpoint ({_listing(missing)}), "
            f"{len(unexpected)} checkpoint tensors not in the model ({_listing(unexpected)}). "
            "Fix the names with strip_prefix/remap, list deliberate gaps under `skip`, or set `strict: false`."
        )

    model.load_state_dict({k: renamed[k] for k in matched}, strict=False)
    log.info(f"load_weights: loaded {len(matched)} of the model's {len(target)} tensors from {path}")
    if skipped:
        log.info(f"load_weights: skipped {len(skipped)} checkpoint tensors: {_listing(skipped)}")
    if missing:
        log.warning(f"load_weights: {len(missing)} model tensors keep their initial values: {_listing(missing, 10)}")
    if unexpected:
        log.warning(f"load_weights: {len(unexpected)} checkpoint tensors were not used: {_listing(unexpected, 10)}")
    return model
