"""Upstream Lighter's cifar10 example, as its v0.0.4 and v0.0.5 releases write it, runs here unchanged.

The configs below are written for these tests in upstream's format (4-space YAML, `#` ids in 0.0.4, `::` in 0.0.5,
a CI override file of flat keys merged as `example.yaml,test_overrides.yaml`), not copied. torchvision is not a
dependency and nothing may download data, so the project folder brings small stand-ins for CIFAR10 and its
transforms with the same arguments, on random 3x32x32 images.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from lighter import engine
from lighter.config.loader import load_config

PROJECT_FILES = {
    "__init__.py": "",
    "models/__init__.py": "",
    "models/net.py": '''
        import torch
        from torch import nn


        class Net(nn.Module):
            """A small CNN for 3x32x32 images and 10 classes."""

            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(3, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2)
                )
                self.head = nn.Linear(16 * 5 * 5, 10)

            def forward(self, x):
                return self.head(torch.flatten(self.features(x), 1))
    ''',
    "data.py": '''
        """Stand-ins for torchvision's CIFAR10 and transforms: same arguments, random images, nothing downloaded."""

        import torch


        class CIFAR10(torch.utils.data.Dataset):
            def __init__(self, root, train=True, transform=None, target_transform=None, download=False, size=None):
                generator = torch.Generator().manual_seed(0 if train else 1)
                n = size or (96 if train else 48)
                self.images = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=generator)
                self.labels = torch.randint(0, 10, (n,), generator=generator).tolist()
                self.transform, self.target_transform = transform, target_transform

            def __len__(self):
                return len(self.labels)

            def __getitem__(self, index):
                image, label = self.images[index], self.labels[index]
                if self.transform is not None:
                    image = self.transform(image)
                if self.target_transform is not None:
                    label = self.target_transform(label)
                return image, label


        class Compose:
            def __init__(self, transforms):
                self.transforms = transforms

            def __call__(self, x):
                for transform in self.transforms:
                    x = transform(x)
                return x


        class ToTensor:
            """HWC uint8 -> CHW float in [0, 1]."""

            def __call__(self, image):
                return image.permute(2, 0, 1).float() / 255


        class Normalize:
            def __init__(self, mean, std):
                self.mean = torch.tensor(mean).view(-1, 1, 1)
                self.std = torch.tensor(std).view(-1, 1, 1)

            def __call__(self, x):
                return (x - self.mean) / self.std
    ''',
}

# Upstream's layout: the example under projects/cifar10/experiments/, the CI overrides under tests/integration/.
EXAMPLE = "projects/cifar10/experiments/example.yaml"
EXAMPLE_OVERRIDES = "projects/cifar10/experiments/example_overrides.yaml"
TEST_OVERRIDES = "tests/integration/test_overrides.yaml"

_METRIC = """\
            - _target_: torchmetrics.{name}
              task: multiclass
              num_classes: 10
              average: macro
"""
_DATASET = """\
            _target_: torch.utils.data.DataLoader
            batch_size: 512
            num_workers: 2
            pin_memory: True
            shuffle: {shuffle}
            dataset:
                _target_: project.data.CIFAR10
                download: True
                root: ./.datasets/
                train: {train}
                transform:
                    _target_: project.data.Compose
                    transforms:
                        - _target_: project.data.ToTensor
                        - _target_: project.data.Normalize
                          mean: [0.5, 0.5, 0.5]
                          std: [0.5, 0.5, 0.5]
                target_transform: null
"""


def example(sep: str) -> str:
    """The cifar10 example as upstream writes it; `sep` is `#` (v0.0.4) or `::` (v0.0.5)."""
    metrics = "".join(_METRIC.format(name=n) for n in ("Accuracy", "F1Score", "Precision", "Recall"))
    return f"""\
project: ./projects/cifar10

trainer:
    _target_: pytorch_lightning.Trainer
    max_epochs: 100
    accelerator: cpu
    # devices: 1  # 2
    # strategy: ddp
    log_every_n_steps: 10
    logger: False
    callbacks:
        - _target_: lighter.callbacks.FileWriter
          path: '$f"{{@project}}/predictions"'
          writer: tensor

system:
    _target_: lighter.System

    model:
        _target_: "project.models.net.Net"

    criterion:
        _target_: torch.nn.CrossEntropyLoss

    optimizer:
        _target_: torch.optim.Adam
        params: "$@system{sep}model.parameters()"
        lr: 0.001
        weight_decay: 0.00001

    metrics:
        train:
{metrics.rstrip()}
        val: "%{sep}train"
        test: "%{sep}train"

    dataloaders:
        train:
{_DATASET.format(shuffle="True", train="True").rstrip()}

        val:
{_DATASET.format(shuffle="False", train="False").rstrip()}

        test: "%{sep}val"
        predict: "%{sep}val"

    adapters:
        train:
            batch:
                _target_: lighter.adapters.BatchAdapter
                input_accessor: 0
                target_accessor: 1
        val: "%{sep}train"
        test: "%{sep}train"
        predict: "%{sep}train"
"""


def example_overrides(sep: str) -> str:
    return f"trainer{sep}max_epochs: 1\nsystem{sep}optimizer{sep}_target_: torch.optim.SGD\n"


def ci_overrides(sep: str) -> str:
    """The file upstream's CI merges after the example: flat keys only."""
    return textwrap.dedent(f"""\
        trainer{sep}fast_dev_run: True
        trainer{sep}accelerator: cpu

        system{sep}dataloaders{sep}train{sep}batch_size: 16
        system{sep}dataloaders{sep}train{sep}num_workers: 0

        system{sep}dataloaders{sep}val{sep}batch_size: 16
        system{sep}dataloaders{sep}val{sep}num_workers: 0
    """)


def write_upstream_checkout(root: Path, sep: str) -> Path:
    for name, text in PROJECT_FILES.items():
        path = root / "projects" / "cifar10" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    for name, text in ((EXAMPLE, example(sep)), (EXAMPLE_OVERRIDES, example_overrides(sep)),
                       (TEST_OVERRIDES, ci_overrides(sep))):  # fmt: skip
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


VERSIONS = [pytest.param("#", id="v0.0.4"), pytest.param("::", id="v0.0.5")]


@pytest.mark.parametrize("sep", VERSIONS)
def test_ci_override_file_merges_flat_keys(tmp_path, sep):

    write_upstream_checkout(tmp_path, sep)
    data = load_config(f"{EXAMPLE},{TEST_OVERRIDES}").data
    assert data["trainer"]["fast_dev_run"] is True and data["trainer"]["max_epochs"] == 100
    loaders = data["system"]["dataloaders"]
    assert (loaders["train"]["batch_size"], loaders["train"]["num_workers"], loaders["train"]["shuffle"]) == (
        16,
        0,
        True,
    )
    assert (loaders["val"]["batch_size"], loaders["val"]["num_workers"]) == (16, 0)
    assert not [key for key in data if "#" in key or "::" in key]


@pytest.mark.parametrize("sep", VERSIONS)
def test_example_fits_through_the_cli_with_the_ci_overrides(tmp_path, sep, cli):
    # As upstream's CI: `lighter fit example.yaml,test_overrides.yaml` from the repository root.
    write_upstream_checkout(tmp_path, sep)
    fit = cli(["fit", f"{EXAMPLE},{EXAMPLE_OVERRIDES},{TEST_OVERRIDES}"], cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "Traceback" not in fit.stderr


def test_v004_example_tests_and_predicts_through_the_cli(tmp_path, cli):
    write_upstream_checkout(tmp_path, "#")
    test = cli(["test", f"{EXAMPLE},{TEST_OVERRIDES}"], cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    assert "test/metrics/" in test.stdout  # Lightning's results table (it wraps long names)

    predict = cli(["predict", f"{EXAMPLE},{TEST_OVERRIDES}"], cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr[-3000:]
    written = sorted((tmp_path / "projects" / "cifar10" / "predictions").glob("*.pt"))
    assert len(written) == 16  # fast_dev_run: one batch of 16
    assert torch.load(written[0]).shape == (10,)


def test_v005_example_tests_and_predicts(tmp_path, monkeypatch):
    write_upstream_checkout(tmp_path, "::")
    monkeypatch.chdir(tmp_path)
    results = engine.call_stage("test", [f"{EXAMPLE},{TEST_OVERRIDES}"])
    names = {f"test/metrics/Multiclass{m}/epoch" for m in ("Accuracy", "F1Score", "Precision", "Recall")}
    assert set(results[0]) == names
    engine.call_stage("predict", [f"{EXAMPLE},{TEST_OVERRIDES}"])
    assert len(list((tmp_path / "projects" / "cifar10" / "predictions").glob("*.pt"))) == 16
