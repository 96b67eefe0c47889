"""Runs record themselves: config, command, versions, seed and git state; nothing is overwritten."""

import subprocess
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from lighter.engine import call_stage
from lighter.errors import ConfigError
from lighter.run.files import CHECKPOINT_CONFIG_FILE, CHECKPOINT_KEY, CONFIG_FILE, RUN_FILE

PROJECT = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import TensorDataset


    def toy(n=16):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 4, generator=g)
        return TensorDataset(x, (x.sum(1) > 0).long())
    """
)

CONFIG = textwrap.dedent(
    """\
    project: ./toy_project
    seed: 7
    trainer:
      _target_: pytorch_lightning.Trainer
      max_epochs: 2
      deterministic: true
      enable_progress_bar: false
      enable_model_summary: false
      logger: {_target_: pytorch_lightning.loggers.CSVLogger, save_dir: logs, name: toy}
      callbacks:
        - {_target_: pytorch_lightning.callbacks.ModelCheckpoint, save_last: true}
    system:
      _target_: lighter.System
      model: {_target_: torch.nn.Linear, in_features: 4, out_features: 2}
      criterion: {_target_: torch.nn.CrossEntropyLoss}
      optimizer: {_target_: torch.optim.SGD, params: "$@system::model.parameters()", lr: 0.1, momentum: 0.9}
      dataloaders:
        train:
          _target_: torch.utils.data.DataLoader
          dataset: {_target_: project.toy}
          batch_size: 4
          shuffle: true
    """
)


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    """A config with a project folder beside it, in a fresh working directory."""
    (tmp_path / "exp" / "toy_project").mkdir(parents=True)
    (tmp_path / "exp" / "toy_project" / "__init__.py").write_text(PROJECT)
    config = tmp_path / "exp" / "config.yaml"
    config.write_text(CONFIG)
    monkeypatch.chdir(tmp_path / "exp")
    return config


def weights(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


def test_fit_records_config_command_versions_and_seed(experiment):
    call_stage("fit", [str(experiment)], ["trainer::max_epochs=1"])
    run_dir = experiment.parent / "logs" / "toy" / "version_0"
    saved = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
    record = yaml.safe_load((run_dir / RUN_FILE).read_text())
    assert saved["trainer"]["max_epochs"] == 1  # the override is in the saved config
    assert Path(saved["project"]).is_absolute()
    assert record["command"].endswith("trainer::max_epochs=1")
    assert record["seed"] == 7
    assert record["stage"] == "fit"
    assert set(record["versions"]) >= {"python", "torch", "pytorch-lightning", "monai", "lighter"}
    assert record["git"] is None  # tmp_path is no git checkout


def test_git_commit_and_dirty_state_are_recorded(experiment):
    project = experiment.parent / "toy_project"
    git = ["git", "-C", str(project), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "toy"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (project / "__init__.py").write_text(PROJECT + "\n# edited\n")
    call_stage("fit", [str(experiment)], ["trainer::max_epochs=1"])
    record = yaml.safe_load((experiment.parent / "logs" / "toy" / "version_0" / RUN_FILE).read_text())
    assert record["git"] == {"commit": commit, "dirty": True, "folder": str(project.resolve())}


def test_without_logger_runs_go_to_runs_stage_timestamp_and_never_collide(experiment):
    for _ in range(2):
        call_stage(
            "fit", [str(experiment)], ["trainer::max_epochs=1", "trainer::logger=false", "trainer::callbacks=[]"]
        )
    dirs = sorted((experiment.parent / "runs" / "fit").iterdir())
    assert len(dirs) == 2
    assert all((d / CONFIG_FILE).is_file() and (d / RUN_FILE).is_file() for d in dirs)


def test_a_recorded_run_directory_is_never_overwritten(experiment):
    fixed = ["trainer::max_epochs=1", "trainer::logger::version=0"]
    call_stage("fit", [str(experiment)], fixed)
    config = experiment.parent / "logs" / "toy" / "version_0" / CONFIG_FILE
    before = config.read_text()
    with pytest.raises(ConfigError, match="already holds a recorded run"):
        call_stage("fit", [str(experiment)], [*fixed, "trainer::max_epochs=2"])
    assert config.read_text() == before


def test_checkpoint_carries_the_config(experiment):
    call_stage("fit", [str(experiment)], ["trainer::max_epochs=1"])
    run_dir = experiment.parent / "logs" / "toy" / "version_0"
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"][CHECKPOINT_KEY] == yaml.safe_load((run_dir / CONFIG_FILE).read_text())


def test_test_stage_records_the_config_that_trained_its_checkpoint(experiment):
    call_stage("fit", [str(experiment)], ["trainer::max_epochs=1"])
    first = experiment.parent / "logs" / "toy" / "version_0"
    ckpt = first / "checkpoints" / "last.ckpt"
    data = "system::dataloaders::test=%system::dataloaders::train"
    call_stage("test", [str(experiment)], [data, f"args::test::ckpt_path={ckpt}"])
    second = experiment.parent / "logs" / "toy" / "version_1"
    trained_with = yaml.safe_load((second / CHECKPOINT_CONFIG_FILE).read_text())
    assert trained_with == yaml.safe_load((first / CONFIG_FILE).read_text())
    assert yaml.safe_load((second / RUN_FILE).read_text())["checkpoint"] == str(ckpt.resolve())


def test_saved_config_reruns_elsewhere_with_identical_weights(experiment, tmp_path, cli):
    call_stage("fit", [str(experiment)])
    first = experiment.parent / "logs" / "toy" / "version_0"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli(["fit", str(first / CONFIG_FILE)], cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-2000:]
    second = elsewhere / "logs" / "toy" / "version_0"
    a, b = weights(first / "checkpoints" / "last.ckpt"), weights(second / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    assert yaml.safe_load((second / CONFIG_FILE).read_text()) == yaml.safe_load((first / CONFIG_FILE).read_text())
