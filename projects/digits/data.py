"""scikit-learn's digits, split reproducibly into train, val and test."""

import numpy as np
import torch
from torch.utils.data import Dataset

SPLITS = {"train": (0.0, 0.7), "val": (0.7, 0.85), "test": (0.85, 1.0)}


class Digits(Dataset):
    """`(image, label)` pairs, or `(image, label, id)` with `with_id`; images are 1x8x8 in [0, 1].

    `noise` adds fixed Gaussian noise (seeded), a harder variant of the same scans.

    The split is a fixed permutation (seed 0), so every stage and every process sees the same samples.
    """

    def __init__(self, split: str = "train", with_id: bool = False, noise: float = 0.0):
        from sklearn.datasets import load_digits

        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        digits = load_digits()
        order = np.random.default_rng(0).permutation(len(digits.target))
        start, stop = (int(f * len(order)) for f in SPLITS[split])
        self.indices = order[start:stop]
        self.images = torch.tensor(digits.images[self.indices] / 16.0, dtype=torch.float32).unsqueeze(1)
        if noise:  # a harder variant of the same data, for swapping datasets in configs/experiments
            generator = torch.Generator().manual_seed(1)
            self.images = (self.images + noise * torch.randn(self.images.shape, generator=generator)).clamp(0, 1)
        self.labels = torch.tensor(digits.target[self.indices], dtype=torch.long)
        self.with_id = with_id

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        if self.with_id:
            return self.images[i], self.labels[i], f"digit-{int(self.indices[i]):04d}"
        return self.images[i], self.labels[i]
