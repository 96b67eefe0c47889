"""Every stage through `lighter.engine.stage.run` with a real Trainer: what runs, what is built, what is seeded."""

from __future__ import annotations

import gc

import pytest
import pytorch_lightning as pl
import torch
from conftest import accuracy, captured, logged, probe, read_metrics, write_yaml

from lighter import engine
from lighter.names import STAGE_MODES, Stage


def test_stage_table_names_trainer_methods():

    for stage in Stage:
        assert callable(getattr(pl.Trainer, stage.value)), stage
    assert set(STAGE_MODES) == set(Stage)


@pytest.mark.parametrize(
    ("stage", "overrides", "check"),
    [
        pytest.param("fit", [], lambda out: out is None, id="fit"),
        pytest.param(
            "validate", [], lambda out: set(out[0]) == {"val/loss/epoch", "val/metrics/acc/epoch"}, id="validate"
        ),
        pytest.param("test", [], lambda out: set(out[0]) == {"test/metrics/acc/epoch"}, id="test"),
        pytest.param("predict", [], lambda out: out is None, id="predict-keeps-nothing-by-default"),
        pytest.param(
            "predict",
            ["args::predict::return_predictions=true"],
            lambda out: len(out) == 2 and out[0]["pred"].shape == (8, 3),
            id="predict-returns-predictions",
        ),
    ],
)
def test_every_stage_runs(tmp_path, config, stage, overrides, check):
    config["system"]["metrics"] = {"train": {"acc": accuracy()}, "val": "%::train", "test": "%::train"}
    path = write_yaml(tmp_path / "config.yaml", config)

    out = engine.call_stage(stage, [str(path)], overrides)

    assert check(out), out
    trainer, system = captured(stage)
    assert trainer.state.finished
    assert isinstance(system.model, torch.nn.Linear)


def test_fit_validates_every_epoch_for_several_epochs(tmp_path, config):
    # Lighter 0.0.4/0.0.5 kept the mode in an attribute and crashed at the second epoch of exactly this run.
    config["trainer"]["max_epochs"] = 4
    config["system"]["metrics"] = {"train": [accuracy()], "val": "%::train"}
    engine.call_stage("fit", [str(write_yaml(tmp_path / "config.yaml", config))])

    rows = read_metrics(tmp_path)
    val_epochs = [row["epoch"] for row in rows if "val/loss/epoch" in row]
    assert val_epochs == [0, 1, 2, 3]
    assert [row["epoch"] for row in rows if "val/metrics/MulticlassAccuracy/epoch" in row] == [0, 1, 2, 3]
    assert len(logged(rows, "train/loss/epoch")) == 4
    assert len(logged(rows, "train/loss/step")) == 4 * 2  # 16 samples, batches of 8
    trainer, _ = captured("fit")
    assert trainer.current_epoch == 4


def test_fit_without_val_dataloader_skips_validation(tmp_path, config):
    del config["system"]["dataloaders"]["val"]
    config["trainer"]["max_epochs"] = 2
    engine.call_stage("fit", [str(write_yaml(tmp_path / "config.yaml", config))])

    rows = read_metrics(tmp_path)
    assert len(logged(rows, "train/loss/epoch")) == 2
    assert logged(rows, "val/loss/epoch") == []


def test_startup_objects_are_frozen_while_the_loop_runs(tmp_path, config):
    # Modules, classes and built objects stay out of the collector's full passes during the loop, and only then.

    engine.call_stage("fit", [str(write_yaml(tmp_path / "config.yaml", config))])

    assert probe().FROZEN[0] > 10_000
    assert gc.get_freeze_count() == 0


# Every part a stage must not build is a `project.probe.Boom`, which raises when built.
# The run completing proves pruning; the paired positive control proves Boom really raises.
_BOOM = {"_target_": "project.probe.Boom"}
_NOT_BUILT = {
    "fit": [
        "dataloaders::test",
        "dataloaders::predict",
        "metrics::test",
        "adapters::test::batch",
        "adapters::predict::batch",
    ],
    "validate": [
        "optimizer",
        "scheduler",
        "dataloaders::train",
        "dataloaders::test",
        "dataloaders::predict",
        "metrics::train",
        "metrics::test",
        "adapters::train::batch",
        "adapters::predict::batch",
    ],
    "test": [
        "optimizer",
        "scheduler",
        "criterion",
        "dataloaders::train",
        "dataloaders::val",
        "dataloaders::predict",
        "metrics::train",
        "metrics::val",
        "adapters::train::batch",
    ],
    "predict": [
        "optimizer",
        "scheduler",
        "criterion",
        "dataloaders::train",
        "dataloaders::val",
        "dataloaders::test",
        "metrics::train",
        "metrics::val",
        "metrics::test",
        "adapters::val::batch",
    ],
}


def _plant(config, path, value):
    node = config["system"]
    *parents, last = path.split("::")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


@pytest.mark.parametrize("stage", [pytest.param(s, id=s) for s in _NOT_BUILT])
def test_stage_builds_only_its_own_parts(tmp_path, config, stage):
    config["system"]["metrics"] = {"train": accuracy(), "val": accuracy(), "test": accuracy()}
    for path in _NOT_BUILT[stage]:
        _plant(config, path, {**_BOOM, "name": path})
    engine.call_stage(stage, [str(write_yaml(tmp_path / "config.yaml", config))])

    _, system = captured(stage)
    if stage in ("test", "predict"):
        assert system.criterion is None
    if stage != "fit":
        assert system.optimizer is None and system.scheduler is None
    assert set(system.dataloaders) == {m.value for m in STAGE_MODES[Stage(stage)]}


@pytest.mark.parametrize(
    ("stage", "part"),
    [
        pytest.param("fit", "optimizer", id="fit-builds-optimizer"),
        pytest.param("fit", "dataloaders::val", id="fit-builds-val-data"),
        pytest.param("validate", "criterion", id="validate-builds-criterion"),
        pytest.param("test", "metrics::test", id="test-builds-test-metrics"),
        pytest.param("predict", "dataloaders::predict", id="predict-builds-predict-data"),
    ],
)
def test_stage_builds_the_parts_it_uses(tmp_path, config, stage, part):
    _plant(config, part, {**_BOOM, "name": part})
    path = write_yaml(tmp_path / "config.yaml", config)

    with pytest.raises(Exception) as info:
        engine.call_stage(stage, [str(path)])
    chain, err = [], info.value
    while err is not None:
        chain.append(str(err))
        err = err.__cause__ or err.__context__
    # Checking a part's kind (on the pruned config, before building) also shows that the stage uses it.
    checked = f"system::{part}::_target_: 'project.probe.Boom' is not"
    assert any(f"{part} was built" in message or checked in message for message in chain), chain


def test_each_stage_builds_its_parts_once(tmp_path, config):
    # `counted(name, value)` in the project package records each call: a dataset wrapped in it, and an
    # optimizer that `_requires_` it, show which parts a stage built, and how often.
    loaders = config["system"]["dataloaders"]
    for mode in ("train", "val", "test"):
        dataset = loaders[mode]["dataset"]
        loaders[mode]["dataset"] = {"_target_": "project.probe.counted", "name": mode, "value": dataset}
    config["system"]["optimizer"]["_requires_"] = {"_target_": "project.probe.counted", "name": "optimizer"}
    path = str(write_yaml(tmp_path / "config.yaml", config))

    built = {}
    for stage in Stage:
        engine.call_stage(stage, [path])
        built[stage.value] = sorted(probe().BUILT)

    assert built == {"fit": ["optimizer", "train", "val"], "validate": ["val"], "test": ["test"], "predict": []}


def _initial_weight(tmp_path, config, seed):
    config["seed"] = seed
    experiment = engine.instantiate(engine.prepare("validate", [str(write_yaml(tmp_path / "config.yaml", config))]))
    return experiment.system.model.weight.detach().clone()


def test_seed_makes_initialisation_repeatable(tmp_path, config):
    first = _initial_weight(tmp_path, config, 7)
    torch.manual_seed(123)  # disturb the global RNG between the runs
    again = _initial_weight(tmp_path, config, 7)
    other = _initial_weight(tmp_path, config, 8)

    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def _save_last_checkpoint(config, tmp_path):
    """Make fit save `ckpt/last.ckpt` after every epoch; returns its path."""
    config["trainer"]["enable_checkpointing"] = True
    config["trainer"]["callbacks"].append(
        {
            "_target_": "pytorch_lightning.callbacks.ModelCheckpoint",
            "dirpath": str(tmp_path / "ckpt"),
            "filename": "last",
            "enable_version_counter": False,
        }
    )
    return tmp_path / "ckpt" / "last.ckpt"


def test_checkpoint_from_fit_loads_in_test_with_criterion_buffers(tmp_path, config):
    # CrossEntropyLoss(weight=...) puts `criterion.weight` in the checkpoint; test does not build the criterion.
    config["trainer"]["max_epochs"] = 2
    last = _save_last_checkpoint(config, tmp_path)
    config["system"]["criterion"]["weight"] = "$torch.tensor([1.0, 2.0, 0.5])"
    config["system"]["metrics"] = {"test": accuracy()}
    config["args"] = {"test": {"ckpt_path": str(last)}}
    path = str(write_yaml(tmp_path / "config.yaml", config))

    engine.call_stage("fit", [path])
    checkpoint = torch.load(last, weights_only=False)
    assert "criterion.weight" in checkpoint["state_dict"]

    results = engine.call_stage("test", [path])

    assert 0.0 <= results[0]["test/metrics/MulticlassAccuracy/epoch"] <= 1.0
    _, system = captured("test")
    assert torch.equal(system.model.weight, checkpoint["state_dict"]["model.weight"])
    assert system.criterion is None

    # validate builds the criterion, so the buffer loads into it.
    config["args"] = {"validate": {"ckpt_path": str(last)}}
    engine.call_stage("validate", [str(write_yaml(tmp_path / "config.yaml", config))])
    _, system = captured("validate")
    assert torch.equal(system.criterion.weight, torch.tensor([1.0, 2.0, 0.5]))


def test_fit_resumes_from_a_checkpoint(tmp_path, config):
    # `args::fit::ckpt_path` restores weights, optimizer and scheduler state and the epoch counter.
    last = _save_last_checkpoint(config, tmp_path)
    config["system"]["scheduler"] = {
        "_target_": "torch.optim.lr_scheduler.StepLR",
        "optimizer": "@system::optimizer",
        "step_size": 1,
        "gamma": 0.5,
    }
    path = str(write_yaml(tmp_path / "config.yaml", config))
    engine.call_stage("fit", [path], ["trainer::max_epochs=2"])
    saved = torch.load(last, weights_only=False)
    assert saved["epoch"] == 1

    # A new run from the first one's checkpoint writes its own into a folder of its own: `ckpt` is the first run's.
    own = f"trainer::callbacks::1::dirpath={tmp_path / 'ckpt2'}"
    engine.call_stage("fit", [path], ["trainer::max_epochs=3", f"args::fit::ckpt_path={last}", own])

    trainer, _ = captured("fit")
    assert trainer.current_epoch == 3
    rows = read_metrics(tmp_path)
    assert [row["epoch"] for row in rows if "train/loss/epoch" in row] == [2]  # only the missing epoch ran
    assert logged(rows, "train/optimizer/SGD/lr") == pytest.approx([0.025])  # the scheduler continued where it stopped
