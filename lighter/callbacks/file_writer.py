"""`FileWriter`: one file per predicted sample, named by its identifier."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from lighter.callbacks.formats import WRITERS, WriteFn
from lighter.callbacks.writer import SampleWriter
from lighter.errors import did_you_mean


class FileWriter(SampleWriter):
    """Writes each predicted sample to `path/<identifier><suffix>`, or `path/<dataset index><suffix>`.

    ```yaml
    trainer:
      callbacks:
        - {_target_: lighter.callbacks.FileWriter, path: runs/predictions, writer: nifti}
    ```

    `writer` is `tensor` (.pt), `image` (.png, 2D) or `nifti` (.nii.gz, keeping a MONAI MetaTensor's affine),
    or a callable `(sample, path)`; a callable gets the path without a suffix unless `suffix` is given.
    With several predict dataloaders, each writes into `path/dataloader_<i>/`. A non-empty `path` is refused
    unless `overwrite: true`, in which case files of the same name are replaced and others left alone.
    """

    kind = "files"

    def __init__(
        self,
        path: str | Path,
        writer: str | Callable[[Any, Path], None] = "tensor",
        overwrite: bool = False,
        suffix: str | None = None,
    ):
        super().__init__(path, overwrite)
        self.writer = writer
        self._write, default_suffix = self._resolve(writer)
        self.suffix = default_suffix if suffix is None else suffix

    @staticmethod
    def _resolve(writer: str | Callable[[Any, Path], None]) -> tuple[WriteFn, str]:
        if callable(writer):
            return writer, ""
        if isinstance(writer, str) and writer in WRITERS:
            return WRITERS[writer]
        hint = did_you_mean(str(writer), WRITERS)
        raise ValueError(
            f"FileWriter writer={writer!r} is not a built-in writer.{f' {hint}' if hint else ''} "
            f"Give one of {', '.join(WRITERS)}, or a callable (sample, path)."
        )

    def path_problem(self) -> tuple[str, str] | None:
        if self.path.exists() and not self.path.is_dir():
            return (
                f"FileWriter path {self.path} is a file, but a FileWriter writes a directory of files"
                + (" (`overwrite: true` replaces files inside the directory, never the directory itself)"
                   if self.overwrite else ""),
                "Give the FileWriter a directory `path`, e.g. the same name without its suffix, or move the file away.",
            )  # fmt: skip
        return super().path_problem()

    def existing(self) -> bool:
        if self.path.is_dir():
            return next(self.path.iterdir(), None) is not None
        return self.path.exists()

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        self.path.mkdir(parents=True, exist_ok=True)

    def write_sample(self, pred: Any, name: str, index: int, dataloader_idx: int | None) -> None:
        folder = self.path if dataloader_idx is None else self.path / f"dataloader_{dataloader_idx}"
        target = folder / f"{name}{self.suffix}"
        if not self.overwrite and target.exists():
            # The folder was empty when predict started, so this file is from this run: two samples share a name.
            raise ValueError(
                f"FileWriter: two samples are named {name!r}, and the second would overwrite {target}. "
                "Make the BatchAdapter's identifier_accessor return a unique name per sample."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        self._write(pred, target)
