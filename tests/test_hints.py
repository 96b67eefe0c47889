"""Hints for names and arguments users of upstream Lighter get wrong: old class names, `*args`, `project.`, adapters."""

from __future__ import annotations

import pytest
from conftest import accuracy, write_yaml

import lighter
from lighter import engine
from lighter.errors import ConfigError


def _build(tmp_path, config, stage="fit"):
    path = write_yaml(tmp_path / "config.yaml", config)
    return engine.instantiate(engine.prepare(stage, [str(path)]), record=False)


@pytest.mark.parametrize(
    ("place", "old", "new"),
    [
        pytest.param("system", "lighter.LighterSystem", "lighter.System", id="system"),
        pytest.param("system", "lighter.system.LighterSystem", "lighter.System", id="system-module-path"),
        pytest.param("callback", "lighter.callbacks.LighterFileWriter", "lighter.callbacks.FileWriter", id="file"),
        pytest.param("callback", "lighter.callbacks.LighterTableWriter", "lighter.callbacks.TableWriter", id="table"),
        pytest.param("callback", "lighter.callbacks.LighterFreezer", "lighter.callbacks.Freezer", id="freezer"),
        pytest.param("callback", "lighter.callbacks.writer.file.LighterFileWriter", "lighter.callbacks.FileWriter",
                     id="writer-module-path"),
    ],
)  # fmt: skip
def test_old_class_names_name_todays_class(tmp_path, config, place, old, new):
    if place == "system":
        config["system"]["_target_"] = old
        key = "system::_target_"
    else:
        config["trainer"]["callbacks"].append({"_target_": old, "path": str(tmp_path / "out")})
        key = "trainer::callbacks::1::_target_"
    with pytest.raises(ConfigError, match=f"is the name of an older lighter. Write `_target_: {new}`") as err:
        _build(tmp_path, config)
    assert err.value.key == key
    assert f"cannot import '{old}'" in err.value.message


def test_dir_lists_the_lazy_system():
    assert "System" in dir(lighter)


def test_star_args_parameter_gets_an_expression_hint(tmp_path, config):
    config["vars"] = {"x": "$torch.zeros(16, 4)", "y": "$torch.zeros(16, dtype=torch.long)"}
    config["system"]["dataloaders"]["train"]["dataset"] = {
        "_target_": "torch.utils.data.TensorDataset",
        "tensors": ["@vars::x", "@vars::y"],
    }
    with pytest.raises(ConfigError, match="unexpected keyword argument 'tensors'") as err:
        _build(tmp_path, config)
    assert err.value.key == "system::dataloaders::train::dataset::tensors"
    assert "'tensors' is the *tensors of its signature: values passed by position" in err.value.suggestion
    assert '"$torch.utils.data.TensorDataset(@vars::a, @vars::b)"' in err.value.suggestion
    assert "Did you mean 'tensors'" not in err.value.suggestion


def test_missing_module_that_the_project_folder_holds_suggests_project_prefix(tmp_path, config):
    (tmp_path / "project" / "models").mkdir()
    (tmp_path / "project" / "models" / "__init__.py").write_text("")
    (tmp_path / "project" / "models" / "net.py").write_text("import torch\nNet = torch.nn.Linear\n")
    config["system"]["model"]["_target_"] = "models.net.Net"
    with pytest.raises(ConfigError, match="no module named 'models'") as err:
        _build(tmp_path, config)
    assert "Did you mean 'project.models.net.Net'? The `project:` folder is imported as `project`." in err.value.message
    config["system"]["model"]["_target_"] = "project.models.net.Net"
    assert _build(tmp_path, config).system.model.out_features == 3


def test_metrics_adapter_keyword_no_metric_takes_names_the_adapter_key(tmp_path, config):
    config["system"]["metrics"] = {"train": [accuracy()]}
    config["system"]["adapters"] = {
        "train": {
            "metrics": {
                "_target_": "lighter.adapters.MetricsAdapter",
                "pred_argument": "preds",
                "target_argument": "targets",
            }
        }
    }
    with pytest.raises(ConfigError, match="is 'targets', a keyword that no metric of system::metrics::train") as err:
        _build(tmp_path, config)
    assert err.value.key == "system::adapters::train::metrics::target_argument"
    assert err.value.location.file.endswith("config.yaml")
    assert "Did you mean 'target'" in err.value.suggestion and "Their update() takes: preds, target." in (
        err.value.suggestion
    )
