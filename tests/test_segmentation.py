"""The MONAI 3D segmentation example: its data, the Dice metric wrapper, and a shortened fit/test/predict."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import torchmetrics
from conftest import REPO
from monai.metrics import DiceMetric

from lighter import engine
from lighter.utils import MonaiMetric

CONFIG = REPO / "configs" / "segmentation.yaml"
# A few steps on tiny volumes: 24^3 volumes, 16^3 patches and windows, one epoch.
SHORT = [
    "vars::size=24",
    "vars::patch=16",
    "trainer::max_epochs=1",
    "trainer::enable_progress_bar=false",
    "system::dataloaders::train::dataset::num_volumes=4",
    "system::dataloaders::val::dataset::num_volumes=2",
    "system::dataloaders::test::dataset::num_volumes=2",
    "system::dataloaders::predict::dataset::num_volumes=3",
]


@pytest.fixture(scope="module")
def data_module():
    spec = importlib.util.spec_from_file_location("segmentation_data", REPO / "projects/segmentation/data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- data ------------------------------------------------------------------------------------------------


def test_volumes_are_reproducible_per_split_and_index(data_module):
    volumes = data_module.SyntheticVolumes("val", num_volumes=2, size=16)
    first, again = volumes[1], data_module.SyntheticVolumes("val", num_volumes=2, size=16)[1]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["label"], again["label"])
    assert not torch.equal(first["image"], data_module.SyntheticVolumes("test", size=16)[1]["image"])
    assert first["name"] == "val-001"
    assert first["image"].shape == first["label"].shape == (1, 16, 16, 16)
    assert set(first["label"].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(first["image"].affine, volumes.affine)


def test_crops_move_the_affine_origin(data_module):
    volumes = data_module.SyntheticVolumes("train", size=16, crop=8)
    torch.manual_seed(0)
    patch = volumes[0]
    assert patch["image"].shape == (1, 8, 8, 8)
    offset = patch["image"].affine[:3, 3] - volumes.affine[:3, 3]
    start = torch.linalg.solve(volumes.affine[:3, :3], offset)  # voxel index of the patch's first corner
    assert torch.allclose(start, start.round()) and (start >= 0).all() and (start <= 8).all()
    full = data_module.SyntheticVolumes("train", size=16)[0]["label"]
    a, b, c = start.round().long().tolist()
    assert torch.equal(patch["label"], full[:, a : a + 8, b : b + 8, c : c + 8])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"split": "valid"}, "split must be one of", id="split"),
        pytest.param({"size": 16, "crop": 32}, "crop must be between 1 and size=16", id="crop"),
    ],
)
def test_volume_errors(data_module, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data_module.SyntheticVolumes(**kwargs)


# ---- MonaiMetric ----------------------------------------------------------------------------------------


def _batches():
    g = torch.Generator().manual_seed(0)
    masks = [(torch.rand(2, 1, 4, 4, 4, generator=g) > 0.5).float() for _ in range(6)]
    batches = [(masks[i], masks[i + 1]) for i in range(0, 6, 2)]
    return [*batches, (torch.zeros(1, 1, 4, 4, 4), torch.zeros(1, 1, 4, 4, 4))]  # empty: NaN, left out of the mean


def _monai(*batches):

    metric = DiceMetric()
    for pred, target in batches:
        metric(pred, target)
    return metric.aggregate()


def test_monai_metric_aggregates_like_monai():

    ours = MonaiMetric(DiceMetric())
    for pred, target in _batches():
        assert torch.allclose(ours(pred, target), _monai((pred, target)))  # forward: this batch alone
    assert torch.allclose(ours.compute(), _monai(*_batches()))  # the epoch: every sample, NaNs left out
    ours.reset()
    ours.update(*_batches()[0])
    assert torch.allclose(ours.compute(), _monai(_batches()[0]))


def test_monai_metric_refuses_other_metrics():

    with pytest.raises(TypeError, match="wraps a MONAI Cumulative metric.*MulticlassAccuracy has no extend"):
        MonaiMetric(torchmetrics.Accuracy(task="multiclass", num_classes=2))


# ---- the example, shortened ------------------------------------------------------------------------------


def test_short_fit_then_test_and_predict_write_nifti_with_the_affine(tmp_path, data_module, cli):
    fit = cli(["fit", str(CONFIG), *SHORT], cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    run_dir = tmp_path / "runs/segmentation/version_0"
    assert (run_dir / "checkpoints/best.ckpt").is_file()
    with (tmp_path / "runs/segmentation/version_0/metrics.csv").open() as f:
        dice = [float(row["val/metrics/dice/epoch"]) for row in csv.DictReader(f) if row.get("val/metrics/dice/epoch")]
    assert len(dice) == 1 and 0.0 <= dice[0] <= 1.0

    tested = engine.call_stage("test", [str(run_dir)], SHORT)  # the run's config and best checkpoint
    assert 0.0 <= tested[0]["test/metrics/dice/epoch"] <= 1.0

    engine.call_stage("predict", [str(run_dir)], SHORT)

    out = tmp_path / "runs/segmentation/predictions"
    names = [f"predict-{i:03d}.nii.gz" for i in range(3)]
    assert sorted(p.name for p in out.iterdir()) == names
    volumes = data_module.SyntheticVolumes("predict", num_volumes=3, size=24)
    for name in names:
        image = nib.load(out / name)
        assert image.shape == (24, 24, 24)
        assert np.allclose(image.affine, volumes.affine.numpy())
        assert set(np.unique(image.get_fdata())) <= {0.0, 1.0}
    assert "project" in sys.modules  # the example's package was imported under its configured name


def test_config_is_the_one_the_readme_runs():
    text = (REPO / "README.md").read_text()
    assert "lighter fit configs/segmentation.yaml" in text
    assert Path(CONFIG).is_file()
