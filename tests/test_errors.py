"""Every user mistake gives a short message naming the key path, the file and line, and a fix."""

import textwrap
from pathlib import Path

import pytest

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
      metrics:
        train: [{_target_: torchmetrics.Accuracy, task: multiclass, num_classes: 2}]
      dataloaders:
        train:
          _target_: torch.utils.data.DataLoader
          dataset: "$torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))"
          batch_size: 4
    """
)


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


# (id, text replacements on BASE, the line to point at, the stage, fragments the message must hold)
CASES = [
    pytest.param(
        [("seed: 0", "seed: 0\ntrainr: {}")],
        "trainr:",
        "fit",
        ["trainr: unknown key 'trainr' at the top level", "Did you mean 'trainer'"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        [("  optimizer:", "  optimiser: 1\n  optimizer:")],
        "optimiser:",
        "fit",
        ["system::optimiser: unknown key", "Did you mean 'optimizer'"],
        id="unknown-system-key",
    ),
    pytest.param(
        [("    train: [{", "    tain: [{")],
        "tain:",
        "fit",
        ["system::metrics::tain: unknown key", "Did you mean 'train'"],
        id="unknown-metrics-mode",
    ),
    pytest.param(
        [
            (
                "    train:\n      _target_: torch.utils.data.DataLoader",
                "    validation:\n      _target_: torch.utils.data.DataLoader",
            )
        ],
        "validation:",
        "fit",
        ["system::dataloaders::validation: unknown key", "Valid keys: train, val, test, predict"],
        id="unknown-dataloader-mode",
    ),
    pytest.param(
        [("  metrics:", "  adapters:\n    train:\n      critrion: null\n  metrics:")],
        "critrion:",
        "fit",
        ["system::adapters::train::critrion: unknown key", "Did you mean 'criterion'"],
        id="unknown-adapter-kind",
    ),
    pytest.param(
        [("  metrics:", "  adapters:\n    trian: {}\n  metrics:")],
        "trian:",
        "fit",
        ["system::adapters::trian: unknown key", "Did you mean 'train'"],
        id="unknown-adapter-mode",
    ),
    pytest.param(
        [("seed: 0", "seed: 0\nargs:\n  fitt: {}")],
        "fitt:",
        "fit",
        ["args::fitt: unknown key", "Did you mean 'fit'"],
        id="unknown-args-stage",
    ),
    pytest.param(
        [("torch.nn.Linear,", "torch.nn.Linearr,")],
        "torch.nn.Linearr",
        "fit",
        [
            "system::model::_target_: cannot import 'torch.nn.Linearr'",
            "'torch.nn' has no attribute 'Linearr'",
            "Did you mean 'Linear'",
        ],  # fmt: skip
        id="target-attribute-missing",
    ),
    pytest.param(
        [("torch.nn.CrossEntropyLoss", "torchh.nn.CrossEntropyLoss")],
        "torchh.nn",
        "fit",
        ["system::criterion::_target_: cannot import", "no module named 'torchh'", "Did you mean 'torch'"],
        id="target-module-missing",
    ),
    pytest.param(
        [("$@system::model.parameters()", "$@system::modle.parameters()")],
        "params:",
        "fit",
        [
            "system::optimizer::params: the reference '@system::modle' points to nothing",
            "Did you mean 'system::model'",
        ],  # fmt: skip
        id="reference-missing",
    ),
    pytest.param(
        [("seed: 0", "seed: 0\nvars:\n  a: '@vars::b'\n  b: '@vars::a'")],
        "b: '@vars::a'",
        "fit",
        ["circular reference: vars::a -> vars::b -> vars::a"],
        id="circular-reference",
    ),
    pytest.param(
        [("    lr: 0.1", "    lr: 0.1\n    learning_rate: 0.1")],
        "learning_rate:",
        "fit",
        [
            "system::optimizer::learning_rate: 'torch.optim.SGD' rejected its arguments",
            "unexpected keyword argument 'learning_rate'",
            "It accepts: params, lr",
        ],  # fmt: skip
        id="constructor-rejects-argument",
    ),
    pytest.param(
        [("torch.randint(0, 2, (8,)))", "undefined_labels)")],
        "dataset:",
        "fit",
        ["system::dataloaders::train::dataset: the expression", "undefined_labels", "NameError"],
        id="expression-raises",
    ),
    pytest.param(
        [("    train: [{_target_", "    val: '%::tran'\n    train: [{_target_")],
        "'%::tran'",
        "fit",
        [
            "system::metrics::val: the macro '%system::metrics::tran' points to nothing",
            "Did you mean 'system::metrics::train'",
        ],  # fmt: skip
        id="macro-id-missing",
    ),
    pytest.param(
        [("seed: 0", "seed: 0\nvars:\n  part: '%parts/missing.yaml::model'")],
        "part:",
        "fit",
        ["vars::part: the macro", "missing.yaml", "names a file that does not exist"],
        id="macro-file-missing",
    ),
    pytest.param(
        [("seed: 0", "seed: 0\nproject: ./no_such_folder")],
        "project:",
        "fit",
        ["project: directory './no_such_folder' does not exist"],
        id="project-missing",
    ),
    pytest.param(
        [("seed: 0", "seed: 0\nvars:\n  opt: '@system::optimizer'")],
        "opt:",
        "test",
        ["vars::opt: 'system::optimizer' is not built for `lighter test`"],
        id="reference-to-pruned-part",
    ),
    pytest.param(
        [
            (
                "  dataloaders:",
                "  adapters:\n    train:\n      batch:\n        _target_: lighter.adapters.BatchAdapter\n"
                "        input_accessor: image\n  dataloaders:",
            )
        ],
        "input_accessor: image",
        "fit",
        [
            "system::adapters::train::batch::input_accessor: BatchAdapter input_accessor='image' (key) does not fit",
            "which is a list of 2",
            "Use an int index for a list or tuple batch",
        ],
        id="batch-accessor-does-not-fit",
    ),
]


@pytest.mark.parametrize(("edits", "needle", "stage", "fragments"), CASES)
def test_config_mistake_names_key_line_and_fix(tmp_path, monkeypatch, edits, needle, stage, fragments):
    monkeypatch.chdir(tmp_path)
    text = BASE
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        check(stage, [str(path)])
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert f"cfg.yaml:{line_of(path, needle)}" in message
    assert len(message.splitlines()) <= 4


def test_constructor_error_keeps_its_cause(tmp_path):
    path = write(tmp_path, BASE.replace("    lr: 0.1", "    lr: 0.1\n    learning_rate: 0.1"))
    with pytest.raises(ConfigError, match="system::optimizer::learning_rate") as info:
        check("fit", [str(path)])
    cause = info.value.__cause__
    assert isinstance(cause, RuntimeError)  # MONAI's wrapper, whose own cause is the TypeError
    assert isinstance(cause.__cause__, TypeError)


def test_yaml_syntax_error_gives_file_line_and_column(tmp_path):
    path = write(tmp_path, "trainer:\n  max_epochs: 1\n   bad: 2\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error, column \d+") as info:
        prepare("fit", [str(path)])
    assert "cfg.yaml:3" in str(info.value)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(
            ["x=[1,"],
            ["x: the override value '[1,' does not parse as YAML", "from the command line"],
            id="override-not-yaml",
        ),  # fmt: skip
        pytest.param(["=1"], ["has no key", "key::path=value"], id="override-without-key"),
        pytest.param(
            ["system::model::in_features::x=1"],
            ["cannot reach 'x': system::model::in_features holds an int, not a dict or list"],
            id="override-into-scalar",
        ),
    ],
)
def test_command_line_mistakes(tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, BASE + "  \n")
    stage = "test" if any("ckpt" in a for a in args) else "fit"
    text = BASE.replace("      batch_size: 4", "      batch_size: 4\n    test: '%::train'") if stage == "test" else BASE
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        check(stage, [str(path), *args])
    for fragment in fragments:
        assert fragment in str(info.value)


def test_missing_config_file_suggests_a_neighbour(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, BASE, "experiment.yaml")
    with pytest.raises(ConfigError, match="config file 'experimnt.yaml' does not exist") as info:
        prepare("fit", ["experimnt.yaml"])
    assert "Did you mean 'experiment.yaml'?" in str(info.value)


def test_unknown_stage_suggests_the_closest(tmp_path):
    with pytest.raises(ConfigError, match="unknown stage 'tset'") as info:
        call_stage("tset", [str(write(tmp_path, BASE))])
    assert "Did you mean 'test'" in str(info.value)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(["fit", "cfg.yaml", "traner::max_epochs=1"], "Did you mean 'trainer'", id="unknown-key"),
        pytest.param(["fitt", "cfg.yaml"], "unknown command 'fitt'. Did you mean 'fit'", id="unknown-command"),
        pytest.param(["fit", "nope.yaml"], "config file 'nope.yaml' does not exist", id="missing-file"),
        pytest.param(["fit", "cfg.yaml", "x=[1,"], "does not parse as YAML", id="bad-override"),
        pytest.param(
            [
                "fit",
                "cfg.yaml",
                "system::adapters::train::batch={_target_: lighter.adapters.BatchAdapter, input_accessor: image}",
            ],  # fmt: skip
            "system::adapters::train::batch::input_accessor: BatchAdapter input_accessor='image' (key) does not fit "
            "the batch, which is a list of 2",
            id="batch-accessor",
        ),
    ],
)
def test_cli_prints_short_error_and_exits_2(tmp_path, cli, args, fragment):
    write(tmp_path, BASE)
    done = cli(args)
    assert done.returncode == 2, done.stderr
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert "lighter: error:" in done.stderr


def test_debug_flag_shows_the_traceback(tmp_path, cli):
    write(tmp_path, BASE)
    done = cli(["fit", "cfg.yaml", "traner::max_epochs=1", "--debug"])
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "ConfigError" in done.stderr


OWN_MODULE = textwrap.dedent(
    """\
    import pytorch_lightning as pl
    import torch

    from lighter.adapters import BatchAdapter


    class Own(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)
            self.batch = BatchAdapter("image")

        def training_step(self, batch, batch_idx):
            x, _, _ = self.batch(batch)
            return self.layer(x).sum()

        def train_dataloader(self):
            data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.zeros(8))
            return torch.utils.data.DataLoader(data, batch_size=4)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)
    """
)


def test_batch_accessor_in_a_users_own_module_gets_a_short_error(tmp_path, cli):
    # Outside lighter.System there is no config key to name, but the message and exit code stand.
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text(OWN_MODULE)
    write(tmp_path, "project: ./proj\ntrainer: {max_epochs: 1, logger: false}\nsystem: {_target_: project.Own}\n")
    done = cli(["fit", "cfg.yaml"])
    assert done.returncode == 2, done.stderr[-2000:]
    assert (
        "lighter: error: BatchAdapter input_accessor='image' (key) does not fit the batch, which is a list of 2"
        in done.stderr
    )
    assert "Use an int index for a list or tuple batch" in done.stderr
    assert "Traceback" not in done.stderr
