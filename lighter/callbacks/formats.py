"""The file formats `FileWriter` knows by name: a table of name -> (write function, file suffix)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from lighter.adapters import describe

WriteFn = Callable[[Any, Path], None]


def _plain(value: Any) -> Any:
    """A copy that owns its memory and loads without MONAI: a per-sample view would save the whole batch."""
    if isinstance(value, torch.Tensor):
        return value.as_subclass(torch.Tensor).clone()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _tensor(value: Any, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"the {what} writer needs a tensor per sample, got a {describe(value)}. Pick the tensor with the "
            "logging adapter's pred_transforms, or use writer: tensor, which saves any object."
        )
    return value


def write_tensor(value: Any, path: Path) -> None:
    torch.save(_plain(value), path)


def write_image(value: Any, path: Path) -> None:
    """A 2D image, (H, W) or channel-first (1, 3 or 4, H, W); floats are read as [0, 1], integers as 0..255."""
    from PIL import Image  # lazy: optional (pillow, lighter[examples]), for this writer alone

    image = _tensor(value, "image").as_subclass(torch.Tensor)
    if image.ndim == 3 and image.shape[0] in (1, 3, 4):
        image = image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)  # PIL wants (H, W) or (H, W, C)
    elif image.ndim != 2:
        raise ValueError(
            f"the image writer saves 2D images, (H, W) or (C, H, W) with C in 1, 3, 4; got shape {tuple(value.shape)}."
            " Use writer: nifti for volumes, or writer: tensor."
        )
    if image.dtype == torch.bool:
        image = image.to(torch.uint8) * 255
    elif image.is_floating_point():
        image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    elif image.numel() and (image.min() < 0 or image.max() > 255):
        raise ValueError(
            f"the image writer got integers from {int(image.min())} to {int(image.max())}, outside 0..255. "
            "Scale them with the logging adapter's pred_transforms first."
        )
    Image.fromarray(image.to(torch.uint8).contiguous().numpy()).save(path)


def write_nifti(value: Any, path: Path) -> None:
    """A 2D or 3D image, channel-first when it has one more dim than the affine has spatial dims; keeps the affine."""
    from monai.data import MetaTensor, NibabelWriter  # lazy: all of MONAI's package import (0.5-1 s), for NIfTI alone

    image = _tensor(value, "nifti")
    if image.ndim < 2:
        raise ValueError(
            f"the nifti writer saves 2D or 3D images, optionally channel-first; got shape {tuple(image.shape)}. "
            "Use writer: tensor, or a TableWriter for per-sample numbers."
        )
    affine = image.affine if isinstance(image, MetaTensor) else None
    spatial = affine.shape[-1] - 1 if affine is not None else min(image.ndim, 3)
    data = image.as_subclass(torch.Tensor)
    if data.dtype == torch.bool:
        data = data.to(torch.uint8)
    writer = NibabelWriter(output_dtype=None)
    writer.set_data_array(data, channel_dim=0 if data.ndim > spatial else None)
    writer.set_metadata({"affine": affine} if affine is not None else None, resample=False)
    writer.write(str(path))


WRITERS: dict[str, tuple[WriteFn, str]] = {
    "tensor": (write_tensor, ".pt"),
    "image": (write_image, ".png"),
    "nifti": (write_nifti, ".nii.gz"),
    "itk_nifti": (write_nifti, ".nii.gz"),  # Lighter's name for the same format (it writes through ITK)
}
