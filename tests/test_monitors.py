"""`monitor:` keys are checked against the names the System logs, before the Trainer starts."""

from __future__ import annotations

import pytest
from conftest import accuracy, write_yaml

from lighter import engine
from lighter.errors import ConfigError

CHECKPOINT = "pytorch_lightning.callbacks.ModelCheckpoint"
EARLY_STOP = "pytorch_lightning.callbacks.EarlyStopping"
PLATEAU = {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "optimizer": "@system::optimizer"}


def _build(tmp_path, config, monitor=None, where="checkpoint", overrides=None, stage="fit"):
    config["system"]["metrics"] = {"train": {"acc": accuracy()}, "val": "%::train"}
    if where == "checkpoint":
        config["trainer"]["enable_checkpointing"] = True
        config["trainer"]["callbacks"].append({"_target_": CHECKPOINT, "dirpath": str(tmp_path), "monitor": monitor})
    elif where == "early-stopping":
        config["trainer"]["callbacks"].append({"_target_": EARLY_STOP, "monitor": monitor})
    elif where == "scheduler":
        config["system"]["scheduler"] = {"scheduler": PLATEAU, "monitor": monitor}
    path = write_yaml(tmp_path / "config.yaml", config)
    return engine.instantiate(engine.prepare(stage, [str(path)], overrides), record=False)


@pytest.mark.parametrize(
    ("monitor", "where", "overrides"),
    [
        pytest.param("val/loss/epoch", "checkpoint", None, id="val-loss"),
        pytest.param("val/metrics/acc/epoch", "early-stopping", None, id="val-metric"),
        pytest.param("train/metrics/acc/step", "checkpoint", None, id="train-metric-step"),
        pytest.param("train/loss/epoch", "scheduler", None, id="scheduler-train-loss"),
        pytest.param("train/optimizer/SGD/lr", "checkpoint", None, id="learning-rate"),
        pytest.param("val/loss/ce/epoch", "checkpoint", ["system::criterion::_target_=project.probe.SplitLoss"],
                     id="sub-loss"),
        pytest.param("lr-SGD", "checkpoint", None, id="another-callbacks-name"),
    ],
)  # fmt: skip
def test_monitors_of_logged_names_pass(tmp_path, config, monitor, where, overrides):
    experiment = _build(tmp_path, config, monitor, where, overrides)
    assert experiment.system is not None


@pytest.mark.parametrize(
    ("monitor", "where", "key", "hint"),
    [
        pytest.param("val/loss", "checkpoint", "trainer::callbacks::1::monitor", "Did you mean 'val/loss/epoch'?",
                     id="0.0.2-style-loss"),
        pytest.param("val/metrics/acc", "early-stopping", "trainer::callbacks::1::monitor",
                     "Did you mean 'val/metrics/acc/epoch'?", id="0.0.2-style-metric"),
        pytest.param("train/loss_epoch", "checkpoint", "trainer::callbacks::1::monitor",
                     "Did you mean 'train/loss/epoch'?", id="lightning-suffix"),
        pytest.param("val/metrics/accuracy/epoch", "scheduler", "system::scheduler::monitor",
                     "Did you mean 'val/metrics/acc/epoch'", id="scheduler-typo"),
    ],
)  # fmt: skip
def test_monitors_of_names_never_logged_fail_before_training(tmp_path, config, monitor, where, key, hint):
    with pytest.raises(ConfigError, match=f"monitors '{monitor}', which is never logged during `lighter fit`") as err:
        _build(tmp_path, config, monitor, where)
    assert err.value.key == key
    assert err.value.location.file.endswith("config.yaml") and err.value.location.line is not None
    assert hint in err.value.suggestion and "Logged per epoch: " in err.value.suggestion


def test_monitoring_val_without_val_data_says_nothing_is_validated(tmp_path, config):
    del config["system"]["dataloaders"]["val"]
    with pytest.raises(ConfigError, match="monitors 'val/loss/epoch'") as err:
        _build(tmp_path, config, "val/loss/epoch")
    assert "Nothing is validated: add system::dataloaders::val" in err.value.suggestion


def test_monitors_are_not_checked_outside_fit(tmp_path, config):
    # A test run never checkpoints on a monitor, so an old name must not stop it.
    assert _build(tmp_path, config, "val/loss", stage="test").system is not None


def test_cli_reports_a_wrong_monitor_with_exit_2(tmp_path, config, cli):

    config["trainer"]["callbacks"] = [{"_target_": EARLY_STOP, "monitor": "val/loss"}]
    path = write_yaml(tmp_path / "config.yaml", config)
    done = cli(["check", str(path)], cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "trainer::callbacks::0::monitor: monitors 'val/loss', which is never logged" in done.stderr
    assert "config.yaml:" in done.stderr and "Did you mean 'val/loss/epoch'?" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("where", ["early-stopping", "checkpoint"])
def test_upstreams_val_acc_with_no_callback_that_could_log_it_fails_before_training(tmp_path, config, where):
    config["trainer"]["callbacks"] = []  # only Lightning's own callbacks: none logs `val_acc`
    with pytest.raises(ConfigError, match="monitors 'val_acc', which nothing logs during `lighter fit`") as err:
        _build(tmp_path, config, "val_acc", where)
    assert err.value.key == "trainer::callbacks::0::monitor"
    assert "Did you mean 'val/metrics/acc/epoch'?" in err.value.suggestion


def test_check_compares_every_monitor_with_what_its_batch_logged(tmp_path, config):
    # A sub-loss name passes before the fit (its keys are known only once the criterion has run); check's batch
    # shows `wrong` is not among them.
    config["system"]["criterion"] = {"_target_": "project.probe.SplitLoss"}
    config["system"]["metrics"] = {"train": {"acc": accuracy()}, "val": "%::train"}
    config["trainer"]["callbacks"] = [{"_target_": EARLY_STOP, "monitor": "val/loss/wrong/epoch"}]
    path = write_yaml(tmp_path / "config.yaml", config)
    with pytest.raises(ConfigError, match="monitors 'val/loss/wrong/epoch', which was not logged by a training") as err:
        engine.check("fit", [str(path)])
    assert err.value.key == "trainer::callbacks::0::monitor" and err.value.location.line is not None
    assert "val/loss/ce/epoch" in err.value.suggestion
    config["trainer"]["callbacks"][0]["monitor"] = "val/loss/ce/epoch"
    engine.check("fit", [str(write_yaml(path, config))])  # a name the batch logged passes
