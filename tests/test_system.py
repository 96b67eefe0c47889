"""What the System does inside a real run: metrics and losses and their logged names, schedulers, learning-rate
logging, inferers, `forward(epoch=, step=)`, adapters on real batches and predict's output."""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import accuracy, captured, loader, logged, probe, read_metrics, write_yaml

from lighter import engine
from lighter.adapters import BatchAccessError
from lighter.errors import ConfigError


def _run(tmp_path, config, stage, overrides=None):
    return engine.call_stage(stage, [str(write_yaml(tmp_path / "config.yaml", config))], overrides)


def _f1(**kwargs):
    return {"_target_": "torchmetrics.F1Score", "task": "multiclass", "num_classes": 3, **kwargs}


@pytest.mark.parametrize(
    ("metrics", "names"),
    [
        pytest.param(accuracy(), ["MulticlassAccuracy"], id="one-metric"),
        pytest.param([accuracy(), _f1()], ["MulticlassAccuracy", "MulticlassF1Score"], id="list"),
        pytest.param({"acc": accuracy(), "f1": _f1()}, ["acc", "f1"], id="dict"),
    ],
)
def test_metrics_forms_and_logged_names(tmp_path, config, metrics, names):
    config["trainer"]["max_epochs"] = 2
    config["system"]["metrics"] = {"train": metrics, "val": "%::train", "test": "%::train"}

    _run(tmp_path, config, "fit")
    rows = read_metrics(tmp_path)
    for name in names:
        assert len(logged(rows, f"train/metrics/{name}/step")) == 4, name
        assert len(logged(rows, f"train/metrics/{name}/epoch")) == 2, name
        assert len(logged(rows, f"val/metrics/{name}/epoch")) == 2, name
        assert len(logged(rows, f"val/metrics/{name}/step")) == 2 * 2, name  # two val batches per epoch
    assert not [key for row in rows for key in row if key.startswith("test/")]

    table = _run(tmp_path, config, "test")
    assert sorted(table[0]) == sorted(f"test/metrics/{name}/epoch" for name in names)
    assert all(0.0 <= value <= 1.0 for value in table[0].values())


def test_metrics_are_separate_objects_per_mode(tmp_path, config):
    # `%::train` copies the config, so val gets its own Metric and never mixes its state with train's.
    config["system"]["metrics"] = {"train": {"acc": accuracy()}, "val": "%::train"}
    _run(tmp_path, config, "fit")
    _, system = captured("fit")
    assert system.train_metrics["acc"] is not system.val_metrics["acc"]


def test_criterion_returning_a_tensor_logs_the_loss(tmp_path, config):
    config["trainer"]["max_epochs"] = 2
    _run(tmp_path, config, "fit")
    rows = read_metrics(tmp_path)
    assert len(logged(rows, "train/loss/step")) == 4
    assert len(logged(rows, "train/loss/epoch")) == 2
    assert len(logged(rows, "val/loss/epoch")) == 2
    assert len(logged(rows, "val/loss/step")) == 2 * 2
    assert {key for row in rows for key in row if "/loss/" in key} == {
        f"{mode}/loss/{when}" for mode in ("train", "val") for when in ("step", "epoch")
    }
    assert all("loss" in out for out in probe().OUTPUTS["train"])


def test_criterion_returning_a_dict_logs_total_and_sub_losses(tmp_path, config):
    config["trainer"]["max_epochs"] = 2
    config["system"]["criterion"] = {"_target_": "project.probe.SplitLoss"}
    _run(tmp_path, config, "fit")
    rows = read_metrics(tmp_path)
    for name in ("ce", "l2", "total"):  # upstream Lighter logs `total` under its own name too
        assert len(logged(rows, f"train/loss/{name}/step")) == 4
        assert len(logged(rows, f"train/loss/{name}/epoch")) == 2
        assert len(logged(rows, f"val/loss/{name}/epoch")) == 2
    assert len(logged(rows, "train/loss/step")) == 4

    table = _run(tmp_path, config, "validate")[0]
    assert set(table) == {f"val/loss{sub}/epoch" for sub in ("", "/ce", "/l2", "/total")}
    assert table["val/loss/epoch"] == pytest.approx(table["val/loss/ce/epoch"] + table["val/loss/l2/epoch"], rel=1e-5)
    assert table["val/loss/epoch"] == table["val/loss/total/epoch"]


def test_criterion_dict_without_total_is_refused(tmp_path, config):
    config["system"]["criterion"] = "$lambda pred, target: {'ce': pred.sum()}"
    with pytest.raises(ValueError, match="'total'"):
        _run(tmp_path, config, "validate")


def _step_lr(**kwargs):
    return {
        "_target_": "torch.optim.lr_scheduler.StepLR",
        "optimizer": "@system::optimizer",
        "step_size": 1,
        "gamma": 0.5,
        **kwargs,
    }


# Never "improves" after the first epoch (threshold 1e6), so with patience 0 the lr halves from epoch 2 on.
_PLATEAU = {
    "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
    "optimizer": "@system::optimizer",
    "factor": 0.5,
    "patience": 0,
    "threshold": 1e6,
    "threshold_mode": "abs",
}


@pytest.mark.parametrize(
    ("scheduler", "drop_val", "lrs"),
    [
        pytest.param(_step_lr(), False, [0.1, 0.05, 0.025], id="object-steps-per-epoch"),
        pytest.param({"scheduler": _step_lr(), "interval": "epoch"}, False, [0.1, 0.05, 0.025], id="dict-epoch"),
        pytest.param({"scheduler": _step_lr(), "interval": "step"}, False, [0.1, 0.025, 0.00625], id="dict-step"),
        pytest.param({"scheduler": _PLATEAU, "monitor": "val/loss/epoch"}, False, [0.1, 0.1, 0.05], id="plateau-dict"),
        pytest.param(_PLATEAU, False, [0.1, 0.1, 0.05], id="plateau-object-monitors-val-loss"),
        pytest.param({"scheduler": _PLATEAU}, False, [0.1, 0.1, 0.05], id="plateau-dict-without-monitor"),
        pytest.param(_PLATEAU, True, [0.1, 0.1, 0.05], id="plateau-object-without-val-monitors-train-loss"),
    ],
)
def test_scheduler_forms(tmp_path, config, scheduler, drop_val, lrs):
    config["trainer"]["max_epochs"] = 3
    config["system"]["scheduler"] = scheduler
    if drop_val:
        del config["system"]["dataloaders"]["val"]
    _run(tmp_path, config, "fit")
    assert logged(read_metrics(tmp_path), "train/optimizer/SGD/lr") == pytest.approx(lrs)


@pytest.mark.parametrize(
    ("optimizer", "expected", "absent"),
    [
        pytest.param(
            {"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9},
            {"train/optimizer/SGD/lr": 0.1, "train/optimizer/SGD/momentum": 0.9},
            "train/optimizer/SGD/beta1",
            id="sgd-momentum",
        ),
        pytest.param(
            {"_target_": "torch.optim.Adam", "lr": 0.01, "betas": [0.8, 0.99]},
            {"train/optimizer/Adam/lr": 0.01, "train/optimizer/Adam/momentum": 0.8},  # beta1, upstream's name
            "train/optimizer/Adam/beta1",
            id="adam-beta1-as-momentum",
        ),
        pytest.param(
            {
                "_target_": "torch.optim.SGD",
                "lr": 0.1,
                "params": "$[{'params': [@system::model.weight]}, {'params': [@system::model.bias], 'lr': 0.01}]",
            },
            {"train/optimizer/SGD/lr/group1": 0.1, "train/optimizer/SGD/lr/group2": 0.01},
            "train/optimizer/SGD/lr",
            id="param-groups",
        ),
    ],
)
def test_optimizer_values_logged_once_per_epoch(tmp_path, config, optimizer, expected, absent):
    epochs = 3
    config["trainer"]["max_epochs"] = epochs
    config["system"]["optimizer"] = {"params": "$@system::model.parameters()", **optimizer}
    _run(tmp_path, config, "fit")
    rows = read_metrics(tmp_path)
    for name, value in expected.items():
        assert logged(rows, name) == pytest.approx([value] * epochs), name
    assert logged(rows, absent) == []


def _pixel_config(config):
    images = {"_target_": "project.data.images"}
    config["system"]["model"] = {"_target_": "project.probe.PixelNet"}
    modes = ("train", "val", "test", "predict")
    config["system"]["dataloaders"] = {mode: loader(images, batch_size=4) for mode in modes}
    config["system"]["adapters"] = {
        "predict": {"batch": {"_target_": "lighter.adapters.BatchAdapter", "input_accessor": 0}}
    }
    config["system"]["inferer"] = {
        "_target_": "monai.inferers.SlidingWindowInferer",
        "roi_size": [4, 4],
        "sw_batch_size": 4,
    }
    return config


def test_inferer_is_used_outside_training_only(tmp_path, config):
    # The model records the image size it is called with: training sees whole 8x8 images,
    # the sliding window hands it 4x4 patches.
    _pixel_config(config)
    _run(tmp_path, config, "fit")
    calls = probe().CALLS
    assert {c["size"] for c in calls if c["training"]} == {(8, 8)}
    assert {c["size"] for c in calls if not c["training"]} == {(4, 4)}  # the sanity check and validation

    for stage in ("validate", "test"):
        _run(tmp_path, config, stage)
        assert {c["size"] for c in probe().CALLS} == {(4, 4)}, stage

    out = _run(tmp_path, config, "predict", ["args::predict::return_predictions=true"])
    assert {c["size"] for c in probe().CALLS} == {(4, 4)}
    assert out[0]["pred"].shape == (4, 2, 8, 8)  # the windows stitched back together


@pytest.mark.parametrize(
    ("model", "keys", "inferer"),
    [
        pytest.param("EpochModel", {"epoch"}, None, id="epoch"),
        pytest.param("StepModel", {"step"}, None, id="step"),
        pytest.param("EpochStepModel", {"epoch", "step"}, None, id="epoch-and-step"),
        pytest.param("EpochStepModel", {"epoch", "step"}, "monai.inferers.SimpleInferer", id="through-inferer"),
    ],
)
def test_forward_receives_epoch_and_step_when_it_asks(tmp_path, config, model, keys, inferer):
    config["trainer"]["max_epochs"] = 2
    config["system"]["model"] = {"_target_": f"project.probe.{model}", "in_features": 4, "out_features": 3}
    if inferer:
        config["system"]["inferer"] = {"_target_": inferer}
    _run(tmp_path, config, "fit")

    train = [c for c in probe().CALLS if c["training"]]
    assert all(set(c) == {"training", *keys} for c in probe().CALLS)
    if "epoch" in keys:
        assert [c["epoch"] for c in train] == [0, 0, 1, 1]
    if "step" in keys:
        assert [c["step"] for c in train] == [0, 1, 2, 3]
    val = [c for c in probe().CALLS if not c["training"]]
    if "epoch" in keys:
        assert {c["epoch"] for c in val} == {0, 1}


def _samples(**kwargs):
    return loader({"_target_": "project.data.Samples", "seed": 3, **kwargs})


def _batch(input, identifier):
    return {"_target_": "lighter.adapters.BatchAdapter", "input_accessor": input, "identifier_accessor": identifier}


@pytest.mark.parametrize(
    ("dataset", "batch", "pred_transforms"),
    [
        pytest.param(_samples(), _batch(0, 2), "$lambda logits: logits.argmax(dim=1)", id="tuple-batch-one-transform"),
        pytest.param(
            _samples(as_dict=True),
            _batch("image", "name"),
            ["$lambda logits: logits.softmax(dim=1)", {"_target_": "torch.argmax", "_mode_": "callable", "dim": 1}],
            id="dict-batch-list-of-transforms",
        ),
        pytest.param(
            _samples(as_dict=True),
            _batch("$lambda batch: batch['image']", "$lambda batch: batch['name']"),
            [{"_target_": "project.probe.argmax", "_mode_": "callable"}],
            id="callable-accessors",
        ),
    ],
)
def test_predict_returns_pred_and_identifier_after_logging_transforms(
    tmp_path, config, dataset, batch, pred_transforms
):
    config["system"]["dataloaders"]["predict"] = dataset
    config["system"]["adapters"] = {
        "predict": {
            "batch": batch,
            "logging": {"_target_": "lighter.adapters.LoggingAdapter", "pred_transforms": pred_transforms},
        }
    }
    out = _run(tmp_path, config, "predict", ["args::predict::return_predictions=true"])

    assert [set(o) for o in out] == [{"pred", "identifier"}] * 2
    assert list(out[0]["identifier"]) == [f"sample-{i}" for i in range(8)]
    assert list(out[1]["identifier"]) == [f"sample-{i}" for i in range(8, 16)]
    preds = torch.cat([o["pred"] for o in out])
    assert preds.shape == (16,) and preds.dtype == torch.long
    _, system = captured("predict")
    x = sys.modules["project.data"].Samples(seed=3).x
    with torch.no_grad():
        assert torch.equal(preds, system.model(x).argmax(dim=1))


def test_step_outputs_carry_logging_transforms_in_every_mode(tmp_path, config):
    # The logging adapter shapes what each step returns (what callbacks and writers see), in every mode.
    argmax = {
        "_target_": "lighter.adapters.LoggingAdapter",
        "pred_transforms": "$lambda p: p.argmax(dim=1)",
        "target_transforms": "$lambda t: t.float()",
    }
    config["system"]["adapters"] = {mode: {"logging": argmax} for mode in ("train", "val", "test")}
    _run(tmp_path, config, "fit")
    outputs = dict(probe().OUTPUTS)
    _run(tmp_path, config, "test")  # a new run imports `project` afresh
    outputs.update(probe().OUTPUTS)
    for mode in ("train", "val"):
        assert {"loss", "input", "target", "pred", "identifier"} <= set(outputs[mode][0]), mode
    for mode in ("val", "test"):
        out = outputs[mode][0]
        assert out["pred"].shape == (8,) and out["pred"].dtype == torch.long, mode
        assert out["target"].dtype == torch.float32, mode
        assert out["identifier"] is None


def test_criterion_and_metrics_adapters_in_a_run(tmp_path, config):
    # F.cross_entropy called by keyword; metrics fed argmaxed predictions through a transform.
    config["system"]["criterion"] = {"_target_": "torch.nn.functional.cross_entropy", "_mode_": "callable"}
    config["system"]["metrics"] = {"val": {"acc": accuracy()}}
    config["system"]["adapters"] = {
        "val": {
            "criterion": {
                "_target_": "lighter.adapters.CriterionAdapter",
                "pred_argument": "input",
                "target_argument": "target",
            },
            "metrics": {
                "_target_": "lighter.adapters.MetricsAdapter",
                "target_argument": 1,
                "pred_argument": 0,
                "pred_transforms": "$lambda p: p.argmax(dim=1)",
            },
        }
    }
    table = _run(tmp_path, config, "validate")[0]

    _, system = captured("validate")
    x, y = sys.modules["project.data"].pairs(seed=1).tensors
    with torch.no_grad():
        logits = system.model(x)
    assert table["val/loss/epoch"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)
    assert table["val/metrics/acc/epoch"] == pytest.approx(float((logits.argmax(dim=1) == y).float().mean()))


def test_batch_accessor_that_does_not_fit_shows_the_batch(tmp_path, config):
    config["system"]["adapters"] = {
        "val": {"batch": {"_target_": "lighter.adapters.BatchAdapter", "input_accessor": "image"}}
    }
    with pytest.raises(ConfigError, match=r"input_accessor='image'.*list of 2 \(\[0\] Tensor\(shape=\(8, 4\)") as info:
        _run(tmp_path, config, "validate")
    assert info.value.key == "system::adapters::val::batch::input_accessor"
    assert isinstance(info.value.__cause__, BatchAccessError)
