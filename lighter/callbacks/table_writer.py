"""`TableWriter`: one CSV row per predicted sample, gathered from every process and written once."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from lighter.callbacks.writer import IDENTIFIER, PRED, SampleWriter
from lighter.errors import did_you_mean

DATALOADER = "dataloader"


def cell(value: Any) -> Any:
    """A CSV cell: a number for a one-element tensor, a nested list for a bigger one."""
    if isinstance(value, torch.Tensor) or hasattr(value, "tolist"):
        value = value.tolist()
        if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], list):
            value = value[0]
    return value


CELL_WRITERS: dict[str, Callable[[Any], Any]] = {"tensor": cell}


class TableWriter(SampleWriter):
    """Writes `path` (CSV) at the end of predict: an `identifier` column, then `pred`, one row per sample.

    ```yaml
    trainer:
      callbacks:
        - {_target_: lighter.callbacks.TableWriter, path: runs/predictions.csv}
    ```

    When the logging adapter leaves `pred` as a dict, its keys become the columns instead of `pred`.
    `writer` turns a sample's prediction into its cell(s): `tensor` (a number, or a nested list for a bigger
    tensor) or a callable returning a value or a dict of values.
    Rows come in dataset order; `identifier` is the dataset index when the batch has no identifier.
    Only the small rows are kept in memory; under DDP rank 0 gathers them and writes the file.
    An existing file is refused unless `overwrite: true`.
    """

    kind = "a table"

    def __init__(self, path: str | Path, writer: str | Callable[[Any], Any] = "tensor", overwrite: bool = False):
        super().__init__(path, overwrite)
        if not callable(writer) and not (isinstance(writer, str) and writer in CELL_WRITERS):
            hint = did_you_mean(str(writer), CELL_WRITERS)
            raise ValueError(
                f"TableWriter writer={writer!r} is not a built-in cell writer.{f' {hint}' if hint else ''} "
                f"Give one of {', '.join(CELL_WRITERS)}, or a callable (sample) -> value or dict of values."
            )
        self.writer = writer
        self._cell = writer if callable(writer) else CELL_WRITERS[writer]
        self._rows: list[tuple[int, int, dict[str, Any]]] = []  # (dataloader, index, row)

    def path_problem(self) -> tuple[str, str] | None:
        if self.path.is_dir():
            return (
                f"TableWriter path {self.path} is a directory, but a TableWriter writes one CSV file",
                f"Give the TableWriter a file `path`, e.g. {self.path / 'predictions.csv'}.",
            )
        if self.path.exists() and not os.access(self.path, os.W_OK):
            return (f"TableWriter cannot write {self.path}: the file is read-only", "Give it another `path`.")
        return super().path_problem()

    def existing(self) -> bool:
        return self.path.exists()

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        self._rows = []

    def write_sample(self, pred: Any, name: str, index: int, dataloader_idx: int | None) -> None:
        row: dict[str, Any] = {IDENTIFIER: name}
        if dataloader_idx is not None:
            row[DATALOADER] = dataloader_idx
        if self._cell is not cell:
            pred = self._cell(pred)
        if isinstance(pred, Mapping):
            clash = [k for k in pred if str(k) in row]
            if clash:
                raise ValueError(
                    f"TableWriter: the prediction dict has the key(s) {clash}, which name the table's own columns; "
                    "rename them in the logging adapter's pred_transforms."
                )
            row.update({str(k): cell(v) for k, v in pred.items()})
        else:
            row[PRED] = cell(pred)
        self._rows.append((dataloader_idx or 0, index, row))

    def _gather(self, trainer: pl.Trainer) -> list[tuple[int, int, dict[str, Any]]] | None:
        """Every process's rows on rank 0 (None elsewhere)."""
        dist = torch.distributed
        if trainer.world_size == 1 or not (dist.is_available() and dist.is_initialized()):
            return self._rows
        gathered: list[Any] | None = [None] * dist.get_world_size() if trainer.is_global_zero else None
        dist.gather_object(self._rows, gathered, dst=0)
        if gathered is None:
            return None
        return [row for rows in gathered for row in rows]

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rows = self._gather(trainer)
        self._rows = []
        if rows is None:
            return
        rows.sort(key=lambda r: (r[0], r[1]))
        columns: dict[str, None] = {}  # ordered set: first-seen order
        for _, _, row in rows:
            columns.update(dict.fromkeys(row))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns), restval="")
            writer.writeheader()
            writer.writerows(row for _, _, row in rows)
