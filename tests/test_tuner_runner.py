"""`lighter lr_find` and `lighter scale_batch_size` go through the stage runner, as `fit` does: the run is recorded,
the summary names its directory, and an error raised in a component names that component's key."""

from __future__ import annotations

import pytest
import yaml
from conftest import classifier_config, write_yaml


@pytest.mark.parametrize(
    ("command", "args", "found"),
    [
        pytest.param("lr_find", ["args::lr_find::num_training=4"], "lighter lr_find:", id="lr_find"),
        pytest.param(
            "scale_batch_size",
            ["args::scale_batch_size::max_trials=1", "args::scale_batch_size::steps_per_trial=1"],
            "the largest batch size that fits is",
            id="scale_batch_size",
        ),
    ],
)
def test_a_tuner_run_is_recorded_and_summarised_like_a_fit(tmp_path, cli, command, args, found):
    config = write_yaml(tmp_path / "c.yaml", classifier_config(tmp_path))

    done = cli([command, str(config), "--run-dir", str(tmp_path / "run"), *args])

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Run directory:" in out and found in out
    assert out.index("Run directory:") < out.index(found)  # the runner's summary, then what the tuner found
    record = yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())
    assert record["status"] == "finished" and record["stage"] == command


@pytest.mark.parametrize("command", ["lr_find", "scale_batch_size"])
def test_an_error_in_a_tuner_run_names_its_component_and_is_recorded(tmp_path, cli, command):
    config = classifier_config(tmp_path)
    config["system"]["model"]["in_features"] = 5  # the data have 4: the model fails in the first step
    path = write_yaml(tmp_path / "c.yaml", config)

    done = cli([command, str(path), "--run-dir", str(tmp_path / "run")])

    assert done.returncode == 1
    err = done.stderr
    assert "lighter: error in system::model" in err and err.index("lighter: error in") < err.index("Traceback")
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in done.stderr
    assert "lighter: raised in system::model" in done.stderr  # the note on the exception
    record = yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())
    assert record["status"] == "failed" and record["error"]["type"] == "RuntimeError"
    assert "Run directory:" not in done.stdout  # a failed run prints no summary: its error says enough
