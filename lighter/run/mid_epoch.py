"""A training DataLoader that a fit stopped mid-epoch, or during validation, can resume exactly where it was.

Lightning restores a loader's position only if the loader has `state_dict`/`load_state_dict`; a plain DataLoader
has neither, so a fit resumed mid-epoch would draw a fresh shuffle and run the epoch's remaining number of batches
from its start. `make_resumable` gives the train loader of a `lighter.System` those two methods (its class becomes a
subclass of its own class, nothing else changes): the loader remembers the random states each epoch's iterator
started from, and a resumed fit rebuilds that iterator from them, skips the batches already trained, then carries on
with the random states saved at the interruption. Exact when drawing a batch takes no random number in the main
process (no random transforms, or transforms in workers, whose seeds come from those states too).

A stop during validation (Lightning raises its SIGTERM exception after a validation batch) cannot continue that
validation: Lightning keeps its running epoch values in no checkpoint. The checkpoint then says, in Lightning's own
progress terms, that validation started and no batch of it finished, so Lightning's loops restart mid-evaluation
(`RestartStage.RESTARTED_MID_EVALUATION`) and run the whole validation again; the random states saved are those it
started from (the validation loader, given the same methods, remembers them), and a train loader whose epoch had
ended draws nothing more.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from lighter.run import rng

_CLASSES: dict[type, type] = {}


def _subclass(base: type) -> type:
    """`base` plus a resumable position. Only methods are added, so a `base` instance can take this class."""

    def __iter__(self: Any) -> Iterator[Any]:
        resume, self._lighter_resume = getattr(self, "_lighter_resume", None), None
        if resume is None:
            self._lighter_epoch_rng = rng.capture()
            return base.__iter__(self)
        if resume.get("drawn"):
            self._lighter_epoch_rng = resume["epoch_rng"]
            return iter(())  # nothing left of the epoch; the random states stay as RunRecorder restored them
        interrupted = rng.capture()  # what RunRecorder restored from the checkpoint
        rng.restore(resume["epoch_rng"])
        self._lighter_epoch_rng = resume["epoch_rng"]
        return _continue(base.__iter__(self), resume["taken"], interrupted)

    def state_dict(self: Any) -> dict[str, Any]:
        ref = getattr(self, "_lighter_trainer", None)
        trainer = ref() if ref is not None else None
        epoch_rng, taken, drawn = getattr(self, "_lighter_epoch_rng", None), 0, False
        if trainer is not None and epoch_rng is not None:
            ready = trainer.fit_loop.epoch_loop.batch_progress.current.ready
            taken = ready if 0 < ready < trainer.num_training_batches else 0  # 0: at an epoch boundary
            # Stopped in the validation that ends the epoch: the resumed fit validates, then starts the next epoch.
            drawn = ready >= trainer.num_training_batches and validation_unfinished(trainer)
        return {"epoch_rng": epoch_rng, "taken": taken, "drawn": drawn}

    def load_state_dict(self: Any, state: dict[str, Any]) -> None:
        if (state.get("taken") or state.get("drawn")) and state.get("epoch_rng") is not None:
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


def validation_unfinished(trainer: Any) -> bool:
    """Whether a fit is inside a validation run that has batches left (not the sanity check)."""
    if trainer.state.fn != "fit" or not trainer.validating or trainer.sanity_checking:
        return False
    val_loop = trainer.fit_loop.epoch_loop.val_loop
    return val_loop.batch_progress.current.completed < sum(val_loop.max_batches)


def validation_start_rng(trainer: Any) -> dict[str, Any] | None:
    """The random states the current validation run started from (before its loader drew), if its loader kept them."""
    combined = trainer.fit_loop.epoch_loop.val_loop._combined_loader
    for loader in combined.flattened if combined is not None else []:
        if getattr(loader, "_lighter_epoch_rng", None) is not None:
            return loader._lighter_epoch_rng
    return None


def make_resumable(loader: Any, trainer: Any) -> None:
    """Give a plain `torch.utils.data.DataLoader` (of any subclass) a resumable position; leave others alone.

    A validation loader gets the same class for what its `__iter__` remembers: the states its run started from.
    """
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
