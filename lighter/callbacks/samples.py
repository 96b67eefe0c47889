"""Split one predicted batch into its samples, and find the samples a distributed sampler repeated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DistributedSampler

from lighter.adapters import describe


def batch_length(value: Any) -> int | None:
    """The number of samples in a batch: the length of its first tensor (dim 0) or list."""
    if isinstance(value, torch.Tensor):
        return value.shape[0] if value.ndim else None
    if isinstance(value, Mapping):
        return next((n for n in map(batch_length, value.values()) if n is not None), None)
    if isinstance(value, (list, tuple)):
        return len(value)
    return None


def split(value: Any, size: int, what: str) -> list[Any]:
    """`size` per-sample items: tensors along dim 0 (moved to the CPU once), lists by position, dicts key by key."""
    if value is None:
        return [None] * size
    if isinstance(value, torch.Tensor) and value.ndim:
        parts = value.detach().cpu().unbind(0)  # views, and per-sample metadata for a MONAI MetaTensor
    elif isinstance(value, Mapping):
        columns = {key: split(v, size, f"{what}[{key!r}]") for key, v in value.items()}
        return [{key: column[i] for key, column in columns.items()} for i in range(size)]
    elif isinstance(value, (list, tuple)):
        parts = value
    elif size == 1:
        return [value.detach().cpu() if isinstance(value, torch.Tensor) else value]
    else:
        raise ValueError(
            f"cannot split the {what} into {size} samples: it is a {describe(value)}. A batch's {what} must be a "
            "tensor (split along dim 0), a list (one item per sample) or a dict of those."
        )
    if len(parts) != size:
        raise ValueError(
            f"the {what} holds {len(parts)} samples but the batch has {size}: it is a {describe(value)}. "
            "Return one item per sample, e.g. a dict of batched tensors rather than a tuple of them."
        )
    return list(parts)


def real_samples(loader: Any) -> int | None:
    """How many samples this process gets before a DistributedSampler's padding, or None when nothing is padded.

    To give every process the same count, DistributedSampler repeats the first samples after the last;
    process `rank` gets positions rank, rank + world, ..., so its positions past the dataset's end are repeats.
    """
    sampler = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
    if not isinstance(sampler, DistributedSampler):
        return None
    total = len(sampler.dataset)  # type: ignore[arg-type]
    return min(sampler.num_samples, len(range(sampler.rank, total, sampler.num_replicas)))
