"""Component kinds, the stage's parts, seeds, writer and logger paths: each mistake is a ConfigError before training.

Each row edits a small valid config and names the message it must give. `show` rows run the checks `lighter show`
runs (no imports); the others run `prepare`, which checks everything but builds nothing; `check` rows build.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lighter.config.trust import trust_summary
from lighter.engine import call_stage, check, prepare
from lighter.errors import ConfigError

BASE = textwrap.dedent(
    """\
    seed: 0
    trainer:
      _target_: pytorch_lightning.Trainer
      max_epochs: 1
      logger: false
      enable_checkpointing: false
      enable_progress_bar: false
      enable_model_summary: false
    system:
      _target_: lighter.System
      model: {_target_: torch.nn.Linear, in_features: 4, out_features: 2}
      criterion: {_target_: torch.nn.CrossEntropyLoss}
      optimizer:
        _target_: torch.optim.SGD
        params: "$@system::model.parameters()"
        lr: 0.1
      dataloaders:
        train:
          _target_: torch.utils.data.DataLoader
          dataset: "$torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))"
          batch_size: 4
        predict:
          _target_: torch.utils.data.DataLoader
          dataset: "$torch.randn(8, 4)"
          batch_size: 4
    """
)


def write(tmp_path: Path, text: str = BASE) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


# (overrides, the command that must refuse them, fragments of the message)
CASES = [
    pytest.param(
        ["trainer.max_epochs=3"], "show", ["unknown key 'trainer.max_epochs'", "trainer::max_epochs"], id="dots"
    ),
    pytest.param(
        ["max_epochs=3"], "show", ["unknown key 'max_epochs'", "Did you mean 'trainer::max_epochs'"], id="bare"
    ),
    pytest.param(
        ["seed=-5"], "show", ["seed: the seed -5 is out of range", "from 0 to 4294967295"], id="seed-negative"
    ),
    pytest.param(["seed=18446744073709551616"], "show", ["18446744073709551616 is out of range"], id="seed-2-64"),
    pytest.param(["seed=1e999999"], "show", ["the seed inf is not a whole number", "4294967295"], id="seed-inf"),
    pytest.param(["seed=true"], "show", ["the seed True is not a whole number"], id="seed-bool"),
    pytest.param(
        ["system::model::_target_=.models.Net"],
        "show",
        ["system::model::_target_: `_target_` '.models.Net' starts with a dot", "project.models.Net"],
        id="target-leading-dot",
    ),
    pytest.param(["system::model::_target_='...'"], "show", ["'...' starts with a dot"], id="target-dots"),  # fmt: skip
    pytest.param(["system::model::_target_=torch..nn.Linear"], "show", ["has an empty part"], id="target-empty-part"),
    pytest.param(["system::model::_target_=[a, b]"], "show", ["`_target_` is a list, not an import path"], id="list"),
    pytest.param(["system::model::_target_={a: 1}"], "show", ["`_target_` is a dict, not an import path"], id="dict"),
    pytest.param(
        ["system::scheduler=5"],
        "show",
        ["system::scheduler: must be a component", "Lightning's dict", "not the int 5"],
        id="scheduler-number",
    ),
    pytest.param(
        ["system::scheduler={interval: epoch}"],
        "show",
        ["system::scheduler: has no `_target_` and no `scheduler` key"],
        id="scheduler-dict-without-scheduler",
    ),
    pytest.param(
        ["system::criterion=[{_target_: torch.nn.L1Loss}, {_target_: torch.nn.MSELoss}]"],
        "show",
        ["system::criterion: must be one component", "not the list", "module that adds them"],
        id="criterion-list",
    ),
    pytest.param(
        ["trainer::logger=csv"],
        "show",
        ["trainer::logger: must be a logger component", "not the str 'csv'", "CSVLogger"],
        id="logger-word",
    ),
    pytest.param(["trainer::callbacks=5"], "show", ["trainer::callbacks: must be a list"], id="callbacks-number"),
    pytest.param(["trainer=3"], "show", ["trainer: must be a mapping of its settings"], id="trainer-number"),
    pytest.param(
        ["system::dataloaders=[1]"], "show", ["system::dataloaders: must be a mapping of modes"], id="loaders"
    ),
    pytest.param(
        ["system::criterion::_target_=torch.optim.SGD"],
        "fit",
        ["system::criterion::_target_: 'torch.optim.SGD' is not callable as criterion(pred, target)"],
        id="criterion-not-callable",
    ),
    pytest.param(
        ["system::scheduler={_target_: torch.nn.Linear, in_features: 1, out_features: 1}"],
        "fit",
        ["system::scheduler::_target_: 'torch.nn.Linear' is not an LR scheduler"],
        id="scheduler-not-a-scheduler",
    ),
    pytest.param(
        ["system::scheduler={scheduler: {_target_: torch.nn.Identity}, interval: epoch}"],
        "fit",
        ["system::scheduler::scheduler::_target_: 'torch.nn.Identity' is not an LR scheduler"],
        id="scheduler-dict-of-a-module",
    ),
    pytest.param(
        ["system::optimizer::_target_=torch.nn.Linear"], "fit", ["is not a torch.optim.Optimizer"], id="optimizer-kind"
    ),
    pytest.param(["system::model::_target_=torch.optim.SGD"], "fit", ["is not a torch.nn.Module"], id="model-kind"),
    pytest.param(
        ["~system::criterion"],
        "fit",
        ["system::criterion: `lighter fit` needs a criterion to train", "from the command line"],
        id="fit-without-criterion",
    ),
    pytest.param(
        ["~system::optimizer"], "fit", ["system::optimizer: `lighter fit` needs a optimizer"], id="no-optimizer"
    ),
    pytest.param(
        ["system::dataloaders::train::_disabled_=true"],
        "fit",
        ["system::dataloaders::train: `lighter fit` needs a `train` dataloader", "torch.utils.data.DataLoader"],
        id="fit-without-train-loader",
    ),
    pytest.param(
        [], "test", ["system::dataloaders::test: `lighter test` needs a `test` dataloader"], id="test-without-loader"
    ),
    pytest.param(["~system::model"], "predict", ["system::model: `lighter predict` needs a model"], id="no-model"),
]


@pytest.mark.parametrize(("overrides", "command", "fragments"), CASES)
def test_config_part_of_the_wrong_kind_is_refused_before_building(tmp_path, overrides, command, fragments):
    path = write(tmp_path)
    stage, imports = ("fit", False) if command == "show" else (command, True)
    with pytest.raises(ConfigError) as info:
        prepare(stage, [str(path)], overrides, imports=imports)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert len(message.splitlines()) <= 3


def test_a_run_without_a_system_is_refused_before_building(tmp_path):
    with pytest.raises(ConfigError, match="system: `lighter validate` needs a `system`"):
        check("validate", [str(write(tmp_path))], ["~system"])


def test_missing_part_points_at_its_parent_in_the_file(tmp_path):
    path = write(tmp_path, BASE.replace("    train:\n      _target_", "    training:\n      _target_"))
    with pytest.raises(ConfigError, match="system::dataloaders::train: `lighter fit` needs") as info:
        prepare("fit", [str(path)], ["~system::dataloaders::training"])
    assert "cfg.yaml:17" in str(info.value)  # `dataloaders:`


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(["seed=4294967295"], id="largest-seed"),
        pytest.param(["seed=null"], id="unseeded"),
        pytest.param(["vars={s: 7}", "seed=@vars::s"], id="seed-reference"),
        pytest.param(["system::scheduler={scheduler: {_target_: torch.optim.lr_scheduler.StepLR, "
                      "optimizer: '@system::optimizer', step_size: 1}, interval: step}"], id="lightning-dict"),
        pytest.param(["~system::criterion", "~system::optimizer"], id="predict-needs-no-optimizer"),
    ],
)  # fmt: skip
def test_valid_variants_pass(tmp_path, overrides):
    stage = "predict" if "~system::optimizer" in overrides else "fit"
    prepare(stage, [str(write(tmp_path))], overrides)


def test_resolved_seed_is_checked_before_seeding(tmp_path):
    with pytest.raises(ConfigError, match="the seed -1 is out of range"):
        check("fit", [str(write(tmp_path))], ["vars={s: -1}", "seed=@vars::s"])


def test_trust_summary_counts_an_expression_target_as_an_expression(tmp_path):
    path = write(tmp_path, BASE.replace("_target_: torch.nn.Linear,", "_target_: \"$__import__('torch').nn.Linear\","))
    experiment = prepare("fit", [str(path)], imports=False)
    summary = trust_summary(experiment.config, experiment.loaded)
    assert "$__import__" not in summary.split("# Expressions")[0]
    assert "# Expressions evaluated with Python's eval (4):" in summary
    assert "system::model::_target_: $__import__('torch').nn.Linear" in summary


# ---- built objects: loggers and writers, found by check and before predict starts ------------------------------
def writer(kind: str, path: str, overwrite: bool = False) -> str:
    return f"trainer::callbacks=[{{_target_: lighter.callbacks.{kind}, path: '{path}', overwrite: {overwrite}}}]"


WRITER_CASES = [
    pytest.param(
        writer("FileWriter", "blocker/preds"),
        ["trainer::callbacks::0::path: FileWriter path", "lies under", "blocker, which is a file"],
        id="file-writer-under-a-file",
    ),
    pytest.param(
        writer("TableWriter", "blocker/preds.csv"),
        ["trainer::callbacks::0::path: TableWriter path", "lies under"],
        id="table-writer-under-a-file",
    ),
    pytest.param(
        writer("FileWriter", "blocker", overwrite=True),
        ["FileWriter path blocker is a file, but a FileWriter writes a directory", "never the directory itself"],
        id="file-writer-at-a-file-with-overwrite",
    ),
    pytest.param(
        writer("TableWriter", "folder", overwrite=True),
        ["TableWriter path folder is a directory, but a TableWriter writes one CSV file", "predictions.csv"],
        id="table-writer-at-a-directory",
    ),
    pytest.param(
        "trainer::logger=\"$'csv'\"",
        ["trainer::logger: is not a Lightning logger: got the str 'c'", "CSVLogger"],
        id="logger-expression-giving-a-word",
    ),
]


@pytest.fixture
def blocked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder should be\n")
    (tmp_path / "folder").mkdir()
    return write(tmp_path)


@pytest.mark.parametrize(("override", "fragments"), WRITER_CASES)
@pytest.mark.parametrize("command", [check, call_stage], ids=["check", "predict"])
def test_unwritable_output_is_found_before_predicting(blocked, override, fragments, command):
    with pytest.raises(ConfigError) as info:
        command("predict", [str(blocked)], [override])
    for fragment in fragments:
        assert fragment in str(info.value)


def test_check_does_not_refuse_a_checkpoint_it_never_loads(blocked):
    check("predict", [str(blocked)], ["args::predict::ckpt_path=missing.ckpt"])
    with pytest.raises(ConfigError, match="checkpoint 'missing.ckpt' does not exist"):
        call_stage("predict", [str(blocked)], ["args::predict::ckpt_path=missing.ckpt"])


# ---- errors in the user's own code -----------------------------------------------------------------------------
BROKEN_MODEL = textwrap.dedent(
    """\
    import torch


    class Net(torch.nn.Linear):
        def forward(self, x):
            raise ZeroDivisionError("bug in my model")
    """
)


def test_error_in_user_code_keeps_its_traceback_and_names_the_component(tmp_path, cli):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "models.py").write_text(BROKEN_MODEL)
    text = "project: ./proj\n" + BASE.replace("_target_: torch.nn.Linear,", "_target_: project.models.Net,")
    write(tmp_path, text)
    result = cli(["fit", "cfg.yaml"], cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("lighter: error in "))
    assert lines[first].startswith("lighter: error in system::model (project.models.Net) at "), result.stderr
    assert "cfg.yaml:12; its traceback follows." in lines[first]
    assert lines[first + 1] == "Traceback (most recent call last):"
    assert 'proj/models.py", line 6, in forward' in result.stderr
    assert "ZeroDivisionError: bug in my model" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "error", "key"),
    [
        pytest.param(["system::model::in_features=5"], RuntimeError, "system::model (torch.nn.Linear)", id="model"),
        pytest.param(
            ["trainer::callbacks=[{_target_: pytorch_lightning.callbacks.LearningRateMonitor}]"],
            Exception,  # Lightning's MisconfigurationException
            "trainer::callbacks::0 (pytorch_lightning.callbacks.LearningRateMonitor)",
            id="callback",
        ),
    ],
)
def test_error_in_a_library_component_keeps_its_type_and_names_the_key(tmp_path, overrides, error, key):
    with pytest.raises(error) as info:
        call_stage("fit", [str(write(tmp_path))], overrides)
    assert f"lighter: raised in {key} " in "".join(getattr(info.value, "__notes__", []))
