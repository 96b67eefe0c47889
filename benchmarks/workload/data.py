"""Benchmark data, built without touching the global RNG so every way of training initialises the same model."""

import torch
from torch.utils.data import TensorDataset


def digits() -> TensorDataset:
    """scikit-learn's 1,797 bundled 8x8 digits, flattened to 64 features in [0, 1]."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    return TensorDataset(torch.tensor(images / 16.0, dtype=torch.float32), torch.tensor(labels, dtype=torch.long))


def synthetic(size: int = 512, num_classes: int = 10, seed: int = 0) -> TensorDataset:
    """Random 3x32x32 images and labels from a private generator."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(size, 3, 32, 32, generator=generator)
    labels = torch.randint(0, num_classes, (size,), generator=generator)
    return TensorDataset(images, labels)
