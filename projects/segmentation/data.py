"""Synthetic 3D volumes from `monai.data.create_test_image_3d`: spheres in noise, each with its mask."""

from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor, create_test_image_3d
from torch.utils.data import Dataset

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2, "predict": 3}  # disjoint volumes per split


class SyntheticVolumes(Dataset):
    """`{"image", "label", "name"}` dicts: 1 x S x S x S float image, binary label of the same shape, a name.

    Volume `i` of a split is always the same (its own seed), so every stage, run and process sees the same data.
    Image and label are MONAI MetaTensors with a fixed `affine` (voxel spacing and origin), which the
    NIfTI writer keeps. `crop` cuts a random cube of that side out of each volume, for training on patches.
    """

    def __init__(
        self,
        split: str = "train",
        num_volumes: int = 16,
        size: int = 64,
        crop: int | None = None,
        noise: float = 0.2,
        spacing: tuple[float, float, float] = (1.0, 1.0, 1.5),
    ):
        if split not in SPLIT_SEEDS:
            raise ValueError(f"split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}")
        if crop is not None and not 0 < crop <= size:
            raise ValueError(f"crop must be between 1 and size={size}, got {crop}")
        self.split, self.num_volumes, self.size, self.crop, self.noise = split, num_volumes, size, crop, noise
        self.affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
        self.affine[:3, 3] = -0.5 * torch.tensor(spacing, dtype=torch.float64) * size  # origin: volume centred

    def __len__(self) -> int:
        return self.num_volumes

    def volume(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.RandomState([SPLIT_SEEDS[self.split], i])
        s = self.size
        image, label = create_test_image_3d(
            s, s, s, num_objs=8, rad_max=s // 5, rad_min=max(2, s // 16), noise_max=self.noise,
            num_seg_classes=1, channel_dim=0, random_state=rng,
        )  # fmt: skip
        return image, label.astype(np.float32)

    def __getitem__(self, i: int) -> dict:
        image, label = (torch.from_numpy(a) for a in self.volume(i))
        affine = self.affine
        if self.crop is not None:
            # A fresh random patch each epoch: torch's RNG, which seed_everything seeds (per worker too).
            start = torch.randint(0, self.size - self.crop + 1, (3,)).tolist()
            box = tuple(slice(a, a + self.crop) for a in start)
            image, label = image[(slice(None), *box)], label[(slice(None), *box)]
            affine = affine.clone()
            affine[:3, 3] += affine[:3, :3] @ torch.tensor(start, dtype=torch.float64)
        name = f"{self.split}-{i:03d}"
        return {"image": MetaTensor(image, affine=affine), "label": MetaTensor(label, affine=affine), "name": name}
