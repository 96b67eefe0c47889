"""A config written the way Lighter's docs write one runs unchanged through fit, validate, test and predict."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from conftest import logged, read_metrics, write_yaml

from lighter import engine

# The project next to the config: dict samples, as Lighter's examples use, that a tiny CNN can learn.
DATA = '''
import torch
from torch.utils.data import Dataset


class Blobs(Dataset):
    """1x8x8 images whose class is a bright quadrant (plus noise); samples are dicts with an `id`."""

    SIZES = {"train": 48, "val": 24, "test": 24}

    def __init__(self, split="train"):
        g = torch.Generator().manual_seed(list(self.SIZES).index(split))
        n = self.SIZES[split]
        self.label = torch.arange(n) % 3
        self.image = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
        for i, c in enumerate(self.label.tolist()):
            self.image[i, 0, (c // 2) * 4 : (c // 2) * 4 + 4, (c % 2) * 4 : (c % 2) * 4 + 4] += 1.0
        self.split = split

    def __len__(self):
        return len(self.label)

    def __getitem__(self, i):
        return {"image": self.image[i], "label": self.label[i], "id": f"{self.split}-{i:03d}"}
'''

MODELS = """
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes=3, width=8):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.head = nn.Linear(width * 4, num_classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))
"""

CONFIG = """
project: ./project

vars:
  num_classes: 3
  batch_size: 12
  ckpt: checkpoints/last.ckpt

trainer:
  _target_: pytorch_lightning.Trainer
  max_epochs: 3
  accelerator: cpu
  devices: 1
  log_every_n_steps: 1
  enable_progress_bar: False
  enable_model_summary: False
  logger:
    _target_: pytorch_lightning.loggers.CSVLogger
    save_dir: logs
    name: lighter
  callbacks:
    - _target_: pytorch_lightning.callbacks.ModelCheckpoint
      dirpath: checkpoints
      filename: last
      enable_version_counter: False
    - _target_: project.capture.Capture

system:
  _target_: lighter.System

  model:
    _target_: project.models.TinyNet
    num_classes: "%vars#num_classes"

  criterion:
    _target_: torch.nn.CrossEntropyLoss

  optimizer:
    _target_: torch.optim.Adam
    params: "$@system#model.parameters()"
    lr: 0.02

  scheduler:
    _target_: torch.optim.lr_scheduler.StepLR
    optimizer: "@system#optimizer"
    step_size: 1
    gamma: 0.5

  metrics:
    train:
      - _target_: torchmetrics.Accuracy
        task: multiclass
        num_classes: "%vars#num_classes"
    val: "%#train"
    test: "%#train"

  dataloaders:
    train:
      _target_: torch.utils.data.DataLoader
      batch_size: "@vars#batch_size"
      shuffle: True
      dataset:
        _target_: project.data.Blobs
        split: train
    val:
      _target_: torch.utils.data.DataLoader
      batch_size: "@vars#batch_size"
      dataset:
        _target_: project.data.Blobs
        split: val
    test:
      _target_: torch.utils.data.DataLoader
      batch_size: "@vars#batch_size"
      dataset:
        _target_: project.data.Blobs
        split: test
    predict: "%#test"

  adapters:
    train:
      batch:
        _target_: lighter.adapters.BatchAdapter
        input_accessor: image
        target_accessor: label
        identifier_accessor: id
      criterion:
        _target_: lighter.adapters.CriterionAdapter
        pred_argument: 0
        target_argument: 1
      metrics:
        _target_: lighter.adapters.MetricsAdapter
        pred_argument: preds
        target_argument: target
    val: "%#train"
    test:
      batch: "%##train#batch"
      metrics: "%##train#metrics"
    predict:
      batch:
        _target_: lighter.adapters.BatchAdapter
        input_accessor: image
        identifier_accessor: id
      logging:
        _target_: lighter.adapters.LoggingAdapter
        pred_transforms:
          - _target_: torch.argmax
            _mode_: callable
            dim: 1

args:
  fit:
    ckpt_path: null
  validate:
    ckpt_path: "%vars#ckpt"
  test:
    ckpt_path: "%vars#ckpt"
  predict:
    ckpt_path: "%vars#ckpt"
    return_predictions: True
"""

CAPTURE = """
import pytorch_lightning as pl

CAPTURED = {}


class Capture(pl.Callback):
    def teardown(self, trainer, pl_module, stage):
        CAPTURED[stage] = (trainer, pl_module)
"""


@pytest.fixture
def lighter_config(tmp_path, monkeypatch):
    """The config and its project in `experiments/`, run from another directory, as a user would."""
    folder = tmp_path / "experiments"
    for name, text in {"__init__.py": "", "data.py": DATA, "models.py": MODELS, "capture.py": CAPTURE}.items():
        write_yaml(folder / "project" / name, textwrap.dedent(text).lstrip())
    config = write_yaml(folder / "config.yaml", CONFIG)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return config


def test_lighter_config_runs_every_stage(lighter_config):
    path = str(lighter_config)
    workdir = lighter_config.parent.parent / "work"

    assert engine.call_stage("fit", [path]) is None
    rows = read_metrics(workdir / "logs", name="lighter")
    name = "MulticlassAccuracy"
    assert [row["epoch"] for row in rows if "val/loss/epoch" in row] == [0, 1, 2]  # validated every epoch
    assert len(logged(rows, f"val/metrics/{name}/epoch")) == 3
    assert len(logged(rows, f"train/metrics/{name}/epoch")) == 3
    assert len(logged(rows, f"train/metrics/{name}/step")) == 3 * 4  # 48 samples in batches of 12
    assert logged(rows, "train/optimizer/Adam/lr") == pytest.approx([0.02, 0.01, 0.005])  # StepLR halves it each epoch
    val_loss = logged(rows, "val/loss/epoch")
    assert val_loss[-1] < val_loss[0], val_loss  # it learns
    checkpoint = workdir / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    weights = torch.load(checkpoint, weights_only=False)["state_dict"]

    validated = engine.call_stage("validate", [path])
    assert set(validated[0]) == {"val/loss/epoch", f"val/metrics/{name}/epoch"}
    assert validated[0]["val/loss/epoch"] == pytest.approx(val_loss[-1], rel=1e-4)  # the same weights, the same data

    tested = engine.call_stage("test", [path])
    assert set(tested[0]) == {f"test/metrics/{name}/epoch"}
    assert 0.0 <= tested[0][f"test/metrics/{name}/epoch"] <= 1.0
    _, system = captured_from("test")
    assert torch.equal(system.model.head.weight, weights["model.head.weight"])

    predictions = engine.call_stage("predict", [path])
    assert [set(batch) for batch in predictions] == [{"pred", "identifier"}] * 2
    assert [i for batch in predictions for i in batch["identifier"]] == [f"test-{i:03d}" for i in range(24)]
    preds = torch.cat([batch["pred"] for batch in predictions])
    assert preds.dtype == torch.long and preds.shape == (24,)
    labels = torch.arange(24) % 3
    assert (preds == labels).float().mean().item() == pytest.approx(tested[0][f"test/metrics/{name}/epoch"])


def test_lighter_config_with_overrides_in_lighter_style(lighter_config):
    # Lighter's CLI style: `#` separators in override keys; a different optimizer swapped in whole.
    engine.call_stage(
        "fit",
        [str(lighter_config)],
        [
            "trainer#max_epochs=1",
            "system#optimizer={_target_: torch.optim.SGD, params: '$@system#model.parameters()', lr: 0.1}",
            "system#scheduler=null",
        ],
    )
    trainer, _ = captured_from("fit")
    assert trainer.current_epoch == 1
    assert type(trainer.optimizers[0]).__name__ == "SGD"
    assert trainer.lr_scheduler_configs == []


def captured_from(stage):
    return sys.modules["project.capture"].CAPTURED[stage]
