"""`SampleWriter`: what `FileWriter` and `TableWriter` share.

Each predicted sample reaches `write_sample` exactly once across all processes, with its name (the batch's
identifier, or its index in the dataset when there is none). Existing output is refused before predict runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from lighter.callbacks.samples import batch_length, real_samples, split
from lighter.errors import ConfigError

PRED, IDENTIFIER = "pred", "identifier"  # the keys of System.predict_step's output
CALLBACKS_KEY = "trainer::callbacks"


def sample_name(identifier: Any, index: int) -> str:
    """A file-safe name: the identifier as text, or the dataset index when there is no identifier."""
    if identifier is None:
        return str(index)
    if hasattr(identifier, "item") and getattr(identifier, "ndim", 0) == 0:
        identifier = identifier.item()
    name = str(identifier)
    parts = Path(name).parts
    if not name or Path(name).is_absolute() or ".." in parts:
        raise ValueError(
            f"the identifier {name!r} cannot name an output file: it is empty, absolute or climbs out with '..'. "
            "Give the BatchAdapter an identifier_accessor that returns a plain name, e.g. the file's stem."
        )
    return name


class SampleWriter(BasePredictionWriter):
    """Base class: splits each batch once, drops a distributed sampler's repeats, calls `write_sample`."""

    kind = "output"  # how the error messages call what is written

    def __init__(self, path: str | Path, overwrite: bool = False):
        super().__init__(write_interval="batch")
        self.path = Path(path)
        self.overwrite = overwrite
        self._position: dict[int, int] = {}  # dataloader -> samples this process has seen
        self._real: dict[int, int | None] = {}  # dataloader -> samples of this process that are not padding
        self._many_loaders = False
        self.written = 0  # samples written in the last predict (by all processes, once it ended)

    def existing(self) -> bool:
        """Whether output from an earlier run is already at `self.path`."""
        raise NotImplementedError

    def write_sample(self, pred: Any, name: str, index: int, dataloader_idx: int | None) -> None:
        raise NotImplementedError

    def path_problem(self) -> tuple[str, str] | None:
        """(what is wrong, the fix) when nothing could be written at `self.path`; checked before predict starts."""
        name = type(self).__name__
        ancestor = next((p for p in self.path.absolute().parents if p.exists()), None)
        if ancestor is not None and not ancestor.is_dir():
            return (
                f"{name} path {self.path} lies under {ancestor}, which is a file, not a directory",
                f"Give the {name} a `path` outside {ancestor}, or move that file away.",
            )
        if not self.path.exists() and ancestor is not None and not os.access(ancestor, os.W_OK | os.X_OK):
            return (
                f"{name} cannot create {self.path}: {ancestor} is not writable",
                f"Give the {name} a `path` in a directory you can write to.",
            )
        return None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage != "predict":
            return
        # Rank 0 looks and tells the others, so all stop together (before the model sees any batch).
        problem = trainer.strategy.broadcast(self.path_problem() if trainer.is_global_zero else None)
        if problem is not None:
            raise ConfigError(problem[0], key=CALLBACKS_KEY, suggestion=problem[1])
        taken = trainer.strategy.broadcast(self.existing() if trainer.is_global_zero else None)
        if taken and not self.overwrite:
            name = type(self).__name__
            raise ConfigError(
                f"{name}: {self.path} already holds {self.kind}, and predictions never overwrite it unless asked",
                key=CALLBACKS_KEY,
                suggestion=f"Set `overwrite: true` on the {name}, give it another `path`, or move the old output away.",
            )

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._position, self._real = {}, {}
        self._many_loaders = len(trainer.num_predict_batches) > 1
        self.written = 0

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # How many samples all processes wrote, for the end-of-run summary: one collective, once.
        if trainer.world_size > 1:
            total = trainer.strategy.reduce(torch.tensor(self.written, device=pl_module.device), reduce_op="sum")
            self.written = int(total)

    def _loader(self, trainer: pl.Trainer, dataloader_idx: int) -> Any:
        loaders = trainer.predict_dataloaders
        if isinstance(loaders, Mapping):
            loaders = list(loaders.values())
        if isinstance(loaders, Sequence):
            return loaders[dataloader_idx] if dataloader_idx < len(loaders) else None
        return loaders

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if isinstance(prediction, Mapping) and PRED in prediction:
            pred, identifier = prediction[PRED], prediction.get(IDENTIFIER)
        else:
            pred, identifier = prediction, None  # a LightningModule other than lighter's System
        size = batch_length(pred) or batch_length(identifier) or (len(batch_indices) if batch_indices else 1)
        preds = split(pred, size, "prediction")
        identifiers = split(identifier, size, "identifier")

        if dataloader_idx not in self._real:
            self._real[dataloader_idx] = real_samples(self._loader(trainer, dataloader_idx))
        start = self._position.get(dataloader_idx, 0)
        self._position[dataloader_idx] = start + size
        real = self._real[dataloader_idx]
        keep = size if real is None else max(0, min(size, real - start))

        world, rank = trainer.world_size, trainer.global_rank
        loader = dataloader_idx if self._many_loaders else None
        self.written += keep
        for j in range(keep):
            # Lightning records the dataset indices of every predict batch; without them, count as the sampler would.
            index = int(batch_indices[j]) if batch_indices else (start + j) * world + rank
            self.write_sample(preds[j], sample_name(identifiers[j], index), index, loader)
