"""A training DataLoader that a fit stopped mid-epoch can resume exactly where it was.

Lightning restores a loader's position only if the loader has `state_dict`/`load_state_dict`; a plain DataLoader
has neither, so a fit resumed mid-epoch would draw a fresh shuffle and run the epoch's remaining number of batches
from its start. `make_resumable` gives the train loader of a `lighter.System` those two methods (its class becomes a
subclass of its own class, nothing else changes): the loader remembers the random states each epoch's iterator
started from, and a resumed fit rebuilds that iterator from them, skips the batches already trained, then carries on
with the random states saved at the interruption. Exact when drawing a batch takes no random number in the main
process (no random transforms, or transforms in workers, whose seeds come from those states too).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from lighter.run import rng

_CLASSES: dict[type, type] = {}


def _subclass(base: type) -> type:
    """`base` plus a resumable position. Only methods are added, so a `base` instance can take this class."""

    def __iter__(self: Any) -> Iterator[Any]:
        resume, self._lighter_resume = getattr(self, "_lighter_resume", None), None
        if resume is None:
            self._lighter_epoch_rng = rng.capture()
            return base.__iter__(self)
        interrupted = rng.capture()  # what RunRecorder restored from the checkpoint
        rng.restore(resume["epoch_rng"])
        self._lighter_epoch_rng = resume["epoch_rng"]
        return _continue(base.__iter__(self), resume["taken"], interrupted)

    def state_dict(self: Any) -> dict[str, Any]:
        ref = getattr(self, "_lighter_trainer", None)
        trainer = ref() if ref is not None else None
        epoch_rng, taken = getattr(self, "_lighter_epoch_rng", None), 0
        if trainer is not None and epoch_rng is not None:
            ready = trainer.fit_loop.epoch_loop.batch_progress.current.ready
            taken = ready if 0 < ready < trainer.num_training_batches else 0  # 0: at an epoch boundary
        return {"epoch_rng": epoch_rng, "taken": taken}

    def load_state_dict(self: Any, state: dict[str, Any]) -> None:
        if state.get("taken") and state.get("epoch_rng") is not None:
            self._lighter_resume = state

    methods = {"__iter__": __iter__, "state_dict": state_dict, "load_state_dict": load_state_dict}
    return type(base.__name__, (base,), {**methods, RESUMABLE: True, "__module__": base.__module__})


RESUMABLE = "_lighter_resumable"


def _continue(batches: Iterator[Any], taken: int, interrupted: dict[str, Any]) -> Iterator[Any]:
    for _ in range(taken):
        next(batches)
    # The interrupted fit had already fetched the next batch when it saved its random states: fetch it first.
    following = next(batches, _END)
    rng.restore(interrupted)
    if following is _END:
        return
    yield following
    yield from batches


_END = object()


def make_resumable(loader: Any, trainer: Any) -> None:
    """Give a plain `torch.utils.data.DataLoader` (of any subclass) a resumable position; leave others alone."""
    from torch.utils.data import DataLoader

    if not isinstance(loader, DataLoader):
        return
    if not getattr(loader, RESUMABLE, False):
        if hasattr(loader, "state_dict"):
            return  # one that keeps its own position (torchdata's StatefulDataLoader)
        cls = type(loader)
        if cls not in _CLASSES:
            _CLASSES[cls] = _subclass(cls)
        loader.__class__ = _CLASSES[cls]
    loader._lighter_trainer = weakref.ref(trainer)
