"""Callbacks that do nothing per batch should cost nothing per batch.

Lightning calls every per-batch hook of every callback on every step, each inside a profiler context and with the
callback's `state_key` formatted, even a hook the callback never overrode (about 35 Python calls a hook, six hooks
a training step). It skips a hook that is not callable, so `quiet_per_batch` sets those a class leaves as
Lightning's no-ops to `None`.
"""

from __future__ import annotations

from typing import TypeVar

import pytorch_lightning as pl

PER_BATCH_HOOKS = tuple(
    f"on_{hook}"
    for hook in (
        *(f"{mode}_batch_{when}" for mode in ("train", "validation", "test", "predict") for when in ("start", "end")),
        "before_backward",
        "after_backward",
        "before_optimizer_step",
        "before_zero_grad",
    )
)

C = TypeVar("C", bound=type[pl.Callback])


def quiet_per_batch(cls: C) -> C:
    """Class decorator: the per-batch hooks `cls` does not override become `None`, which Lightning skips."""
    for hook in PER_BATCH_HOOKS:
        if getattr(cls, hook) is getattr(pl.Callback, hook):
            setattr(cls, hook, None)
    return cls
