"""`lighter show` prints what would run (and what it would import); `lighter check` builds it and runs one batch."""

import subprocess
import sys
import textwrap

import pytest
import yaml
from conftest import REPO

CONFIG = textwrap.dedent(
    """\
    project: ./proj
    trainer:
      _target_: pytorch_lightning.Trainer
      max_epochs: 3
      logger: {_target_: pytorch_lightning.loggers.CSVLogger, save_dir: logs}
    system:
      _target_: lighter.System
      model: {_target_: project.Net}
      criterion: {_target_: torch.nn.CrossEntropyLoss}
      optimizer: {_target_: torch.optim.SGD, params: "$@system::model.parameters()", lr: 0.1}
      metrics:
        train: [{_target_: torchmetrics.Accuracy, task: multiclass, num_classes: 2}]
        val: "%#train"
      dataloaders:
        train:
          _target_: torch.utils.data.DataLoader
          dataset: "$torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))"
          batch_size: 4
        val: "%#train"
    """
)

PROJECT = textwrap.dedent(
    """\
    import pathlib
    import torch

    pathlib.Path("project_was_imported").touch()  # a side effect `show` must not trigger


    class Net(torch.nn.Linear):
        def __init__(self):
            super().__init__(4, 2)
    """
)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text(PROJECT)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    (tmp_path / "more.yaml").write_text("trainer:\n  max_epochs: 5\nsystem:\n  ~metrics: null\n")
    return tmp_path


def test_show_prints_the_merged_config_and_imports_no_project_code(workdir, cli):
    done = cli(["show", "cfg.yaml,more.yaml", "system::optimizer::lr=0.5"], cwd=workdir)
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["trainer"]["max_epochs"] == 5
    assert shown["system"]["optimizer"]["lr"] == 0.5
    assert "metrics" not in shown["system"]
    assert shown["system"]["dataloaders"]["val"] == shown["system"]["dataloaders"]["train"]  # macro expanded
    assert shown["project"] == str(workdir / "proj")
    assert not (workdir / "project_was_imported").exists()


@pytest.mark.slow
def test_show_imports_no_trainer_or_target(workdir):
    # `show` reads and prints: nothing the config names is imported, nor Lightning (MONAI expands the macros).
    code = "import sys; from lighter.cli import main; main(['show', 'cfg.yaml']); print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = done.stdout.strip().splitlines()[-1]
    assert "'monai.bundle'" in imported  # the check sees imports
    for name in ("pytorch_lightning", "torchmetrics", "project"):
        assert f"'{name}'" not in imported, name


def test_show_trust_lists_imports_and_expressions_with_key_paths(workdir, cli):
    done = cli(["show", "cfg.yaml", "--trust"], cwd=workdir)
    assert done.returncode == 0, done.stderr
    summary = [line for line in done.stdout.splitlines() if line.startswith("#")]
    text = "\n".join(summary)
    assert "project (the `project` folder: local code)" in text
    assert any("project.Net" in line and "system::model" in line and "cfg.yaml:8" in line for line in summary)
    assert any("torch.optim.SGD" in line and "system::optimizer" in line for line in summary)
    assert any(line.startswith("#   system::optimizer::params: $@system::model.parameters()") for line in summary)
    assert "Expressions evaluated with Python's eval (3)" in text
    yaml.safe_load(done.stdout)  # the summary is YAML comments: the output stays valid YAML


@pytest.mark.parametrize("stage", ["fit", "validate"])
def test_check_builds_and_runs_one_batch_writing_nothing(workdir, stage, cli):
    done = cli(["check", "cfg.yaml", f"--stage={stage}"], cwd=workdir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"lighter check: OK: `lighter {stage}` builds and runs one batch." in done.stdout
    assert f"lighter check: imported `project` from {(workdir / 'proj').resolve()}" in done.stdout
    assert not (workdir / "logs").exists()
    assert not (workdir / "runs").exists()


def test_check_reports_the_first_error(workdir, cli):
    done = cli(["check", "cfg.yaml", "system::criterion::_target_=torch.nn.CrossEntropyLos"], cwd=workdir)
    assert done.returncode == 2
    assert "system::criterion::_target_: cannot import 'torch.nn.CrossEntropyLos'" in done.stderr
    assert "Traceback" not in done.stderr


def test_show_and_check_are_in_the_readme():
    readme = (REPO / "README.md").read_text()
    assert "lighter show" in readme and "lighter check" in readme


def test_transform_written_as_a_function_component_is_used_as_the_function(workdir, cli):
    # Lighter's docs write `pred_transforms: [{_target_: torch.argmax, dim: 1}]`: the function, not argmax(dim=1).
    adapter = (
        "system::adapters::train::metrics={_target_: lighter.adapters.MetricsAdapter, pred_argument: 0, "
        "target_argument: 1, pred_transforms: [{_target_: torch.argmax, dim: 1}]}"
    )
    done = cli(["check", "cfg.yaml", adapter], cwd=workdir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "builds and runs one batch" in done.stdout
