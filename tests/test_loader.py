"""Reading configs: multi-file merge, overrides, `project`, `vars`, MONAI's special keys and relative macros."""

from __future__ import annotations

import functools
import shutil
import sys

import pytest
import torch
from conftest import captured, probe, write_project, write_yaml

from lighter import engine
from lighter.config.loader import ConfigArgs, load_config, split_config_args

BASE = """
trainer:
  max_epochs: 3
  callbacks: [a, b, c]
system:
  model: {_target_: torch.nn.Linear, in_features: 4, out_features: 3}
  optimizer:
    _target_: torch.optim.Adam
    params: "$@system#model.parameters()"
    lr: 0.001
    betas: [0.9, 0.999]
  dataloaders:
    train: {batch_size: 8, shuffle: true}
    val: {batch_size: 16}
"""


@pytest.mark.parametrize(
    ("later", "expected"),
    [
        pytest.param(
            "trainer: {devices: 1}",
            {"trainer": {"max_epochs": 3, "callbacks": ["a", "b", "c"], "devices": 1}},
            id="dicts-merge",
        ),
        pytest.param(
            "trainer: {callbacks: [d]}",
            {"trainer": {"max_epochs": 3, "callbacks": ["d"]}},
            id="lists-replaced-not-merged",
        ),
        pytest.param(
            "trainer: {max_epochs: 7}",
            {"trainer": {"max_epochs": 7, "callbacks": ["a", "b", "c"]}},
            id="scalars-replaced",
        ),
        pytest.param("~trainer:", {}, id="delete-top-level"),
        pytest.param("trainer: {~callbacks: null}", {"trainer": {"max_epochs": 3}}, id="delete-nested"),
        pytest.param("=trainer: {devices: 1}", {"trainer": {"devices": 1}}, id="replace-top-level"),
        pytest.param(
            "trainer: {=callbacks: [d]}", {"trainer": {"max_epochs": 3, "callbacks": ["d"]}}, id="replace-nested"
        ),
        pytest.param("trainer: 5", {"trainer": 5}, id="scalar-replaces-dict"),
    ],
)
def test_merge_semantics(tmp_path, later, expected):
    first = write_yaml(tmp_path / "a.yaml", "trainer: {max_epochs: 3, callbacks: [a, b, c]}\n")
    second = write_yaml(tmp_path / "b.yaml", later + "\n")
    assert load_config([str(first), str(second)]).data == expected


def test_merge_at_depth(tmp_path):
    base = write_yaml(tmp_path / "base.yaml", BASE)
    exp = write_yaml(
        tmp_path / "exp.yaml",
        """
system:
  =optimizer: {_target_: torch.optim.SGD, params: "$@system#model.parameters()", lr: 0.1}
  model: {out_features: 5}
  dataloaders:
    train: {~shuffle: null, batch_size: 4}
    ~val: null
""",
    )
    system = load_config([str(base), str(exp)]).data["system"]
    assert system["optimizer"] == {"_target_": "torch.optim.SGD", "params": "$@system::model.parameters()", "lr": 0.1}
    assert system["model"] == {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 5}
    assert system["dataloaders"] == {"train": {"batch_size": 4}}


def test_three_files_merge_in_order(tmp_path):
    files = [write_yaml(tmp_path / f"{i}.yaml", f"x: {i}\nkeep{i}: true\n") for i in range(3)]
    assert load_config([str(f) for f in files]).data == {"x": 2, "keep0": True, "keep1": True, "keep2": True}


def test_later_file_cannot_leak_markers_into_a_new_subtree(tmp_path):
    # `=`/`+` inside a subtree the earlier file did not have still act as markers, never as literal keys.
    # (`~` there deletes nothing, which is an error: tests/test_merge.py.)
    first = write_yaml(tmp_path / "a.yaml", "a: 1\n")
    second = write_yaml(tmp_path / "b.yaml", "b: {=c: {d: 1}, f: {+g: [1]}}\n")
    assert load_config([str(first), str(second)]).data == {"a": 1, "b": {"c": {"d": 1}, "f": {"g": [1]}}}


@pytest.mark.parametrize(
    "arrange",
    [
        pytest.param(lambda a, b: [f"{a},{b}"], id="comma-separated"),
        pytest.param(lambda a, b: [a, b], id="separate-arguments"),
        pytest.param(lambda a, b: [f"{a},", b], id="trailing-comma"),
    ],
)
def test_files_as_comma_list_or_separate_arguments(tmp_path, arrange):
    a = write_yaml(tmp_path / "a.yaml", BASE)
    b = write_yaml(tmp_path / "b.yaml", "trainer: {max_epochs: 9}\n")
    loaded = load_config(arrange(str(a), str(b)))
    assert loaded.data["trainer"]["max_epochs"] == 9
    assert loaded.files == [a.resolve(), b.resolve()]


def test_files_and_overrides_mix_on_one_command_line(tmp_path):
    a = write_yaml(tmp_path / "a.yaml", BASE)
    b = write_yaml(tmp_path / "b.yaml", "trainer: {max_epochs: 9}\n")
    data = load_config([str(a), "trainer::max_epochs=2", str(b)]).data
    assert data["trainer"]["max_epochs"] == 2  # overrides come after every file, wherever they were written


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        pytest.param("trainer::max_epochs=5", "trainer::max_epochs", 5, id="int"),
        pytest.param("system::optimizer::lr=0.01", "system::optimizer::lr", 0.01, id="float"),
        pytest.param("system::optimizer::lr=1e-3", "system::optimizer::lr", 1e-3, id="float-exponent"),
        pytest.param("system::optimizer::lr=-2.5E+2", "system::optimizer::lr", -250.0, id="float-signed-exponent"),
        pytest.param("trainer::name=hello", "trainer::name", "hello", id="string"),
        pytest.param("trainer::name='5'", "trainer::name", "5", id="quoted-string"),
        pytest.param("trainer::callbacks=[1, 2]", "trainer::callbacks", [1, 2], id="list"),
        pytest.param(
            "system::optimizer={_target_: torch.optim.SGD, lr: 0.1}",
            "system::optimizer",
            {"_target_": "torch.optim.SGD", "lr": 0.1},
            id="dict-with-target-replaces",
        ),
        pytest.param("trainer::max_epochs=null", "trainer::max_epochs", None, id="null"),
        pytest.param(
            "system::dataloaders::train::shuffle=false", "system::dataloaders::train::shuffle", False, id="false"
        ),
        pytest.param("system::optimizer::lr=@vars::lr", "system::optimizer::lr", "@vars::lr", id="reference"),
        pytest.param("system::optimizer::lr=@vars#lr", "system::optimizer::lr", "@vars::lr", id="reference-hash"),
        pytest.param(
            "system::optimizer::params=$@system#model.parameters()",
            "system::optimizer::params",
            "$@system::model.parameters()",
            id="expression",
        ),
        pytest.param("system::optimizer::lr=$0.1 * 2", "system::optimizer::lr", "$0.1 * 2", id="expression-spaces"),
        pytest.param("vars::model=%system#model", "vars::model", "%system::model", id="macro"),
        pytest.param("trainer::new_key=1", "trainer::new_key", 1, id="new-key"),
        pytest.param("brand::new::path=x", "brand::new::path", "x", id="new-nested-path"),
        pytest.param("trainer#max_epochs=5", "trainer::max_epochs", 5, id="hash-separator"),
        pytest.param("--trainer::max_epochs=5", "trainer::max_epochs", 5, id="dashes"),
        pytest.param("--trainer#max_epochs=5", "trainer::max_epochs", 5, id="dashes-hash"),
        pytest.param("trainer::callbacks::1=z", "trainer::callbacks", ["a", "z", "c"], id="list-index"),
        pytest.param("system::optimizer::betas::0=0.8", "system::optimizer::betas", [0.8, 0.999], id="nested-index"),
        pytest.param("trainer::max_epochs=a=b", "trainer::max_epochs", "a=b", id="value-with-equals"),
    ],
)
def test_override_values(tmp_path, override, key, value):
    data = load_config([str(write_yaml(tmp_path / "a.yaml", BASE)), override]).data
    node = data
    for part in key.split("::"):
        node = node[part]
    assert node == value
    assert type(node) is type(value)


@pytest.mark.parametrize(
    ("override", "path", "remaining"),
    [
        pytest.param("~trainer::max_epochs", ("trainer",), {"callbacks": ["a", "b", "c"]}, id="nested"),
        pytest.param("~trainer#callbacks", ("trainer",), {"max_epochs": 3}, id="hash"),
        pytest.param(
            "~system::dataloaders::val",
            ("system", "dataloaders"),
            {"train": {"batch_size": 8, "shuffle": True}},
            id="subtree",
        ),
        pytest.param("~trainer::callbacks::0", ("trainer", "callbacks"), ["b", "c"], id="list-item"),
    ],
)
def test_override_deletes(tmp_path, override, path, remaining):
    node = load_config([str(write_yaml(tmp_path / "a.yaml", BASE)), override]).data
    for part in path:
        node = node[part]
    assert node == remaining


def test_overrides_as_a_dict_and_in_order(tmp_path):
    path = str(write_yaml(tmp_path / "a.yaml", BASE))
    data = load_config([path], {"trainer#max_epochs": "5", "system::optimizer::lr": 0.5, "vars::x": "@a#b"}).data
    assert data["trainer"]["max_epochs"] == 5
    assert data["system"]["optimizer"]["lr"] == 0.5
    assert data["vars"]["x"] == "@a::b"
    data = load_config([path], ["trainer::max_epochs=5", "~trainer::max_epochs", "trainer::max_epochs=6"]).data
    assert data["trainer"]["max_epochs"] == 6


def test_hash_separators_in_files_become_double_colons(tmp_path):
    path = write_yaml(
        tmp_path / "a.yaml",
        'a: "@system#model"\nb: "$@system#model.parameters() + [@vars#x]"\nc: "%#train"\nd: "plain # text"\n',
    )
    data = load_config([str(path)]).data
    assert data == {
        "a": "@system::model",
        "b": "$@system::model.parameters() + [@vars::x]",
        "c": "%::train",
        "d": "plain # text",
    }


def test_exponent_floats_in_files(tmp_path):
    data = load_config([str(write_yaml(tmp_path / "a.yaml", "a: 1e-3\nb: 5E4\nc: 1e5x\nd: 1.0e-3\n"))]).data
    assert data == {"a": 1e-3, "b": 5e4, "c": "1e5x", "d": 1e-3}


def _runnable(tmp_path, project="project"):
    """A runnable config (written to a string, so `project` can be relative) whose model can be inspected."""
    return f"""
project: {project}
vars:
  lr: 0.05
  width: 4
trainer:
  _target_: pytorch_lightning.Trainer
  max_epochs: 1
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  callbacks: [{{_target_: project.probe.Capture}}]
system:
  _target_: lighter.System
  model: {{_target_: torch.nn.Linear, in_features: "@vars#width", out_features: 3}}
  criterion: {{_target_: torch.nn.CrossEntropyLoss}}
  optimizer: {{_target_: torch.optim.SGD, params: "$@system#model.parameters()", lr: "@vars#lr"}}
  dataloaders:
    train: {{_target_: torch.utils.data.DataLoader, dataset: {{_target_: project.data.pairs}}, batch_size: 8}}
"""


def test_overrides_take_effect_in_a_run(tmp_path):
    write_project(tmp_path)
    path = write_yaml(tmp_path / "config.yaml", _runnable(tmp_path))
    engine.call_stage("fit", [str(path)], ["trainer#max_epochs=2", "--system::optimizer::lr=1e-3", "vars::width=4"])
    trainer, system = captured("fit")
    assert trainer.max_epochs == 2 and trainer.current_epoch == 2
    assert trainer.optimizers[0].param_groups[0]["lr"] == 1e-3
    assert isinstance(trainer.optimizers[0].param_groups[0]["lr"], float)


def test_vars_are_referenced_and_overridable(tmp_path):
    write_project(tmp_path)
    path = str(write_yaml(tmp_path / "config.yaml", _runnable(tmp_path)))
    experiment = engine.instantiate(engine.prepare("fit", [path], ["vars::width=6"]), record=False)
    assert experiment.system.model.in_features == 6
    assert experiment.system.optimizer.param_groups[0]["lr"] == 0.05


def _two_projects(tmp_path):
    """`proj` in the cwd and `proj` next to the config, each saying which it is."""
    cwd, configs = tmp_path / "cwd", tmp_path / "configs"
    for root, name in ((cwd, "cwd"), (configs, "config")):
        folder = write_project(root, "proj")
        (folder / "__init__.py").write_text(f"where = {name!r}\n")
    return cwd, configs


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        pytest.param("config", "config", id="next-to-the-config-file"),
        pytest.param("cwd", "cwd", id="cwd-only-where-the-file-relative-folder-is-missing"),
    ],
)
def test_project_relative_to_config_file_then_cwd(tmp_path, monkeypatch, keep, expected):
    """Issue 23 item 6: the folder next to the declaring file wins; the cwd is only a fallback (both: refused,
    tests/test_project_folder.py)."""
    cwd, configs = _two_projects(tmp_path)
    shutil.rmtree((configs if keep == "cwd" else cwd) / "proj")
    monkeypatch.chdir(cwd)
    path = write_yaml(configs / "config.yaml", _runnable(tmp_path, project="./proj"))

    experiment = engine.prepare("fit", [str(path)])

    assert sys.modules["project"].where == expected
    assert experiment.config["project"] == str((cwd if keep == "cwd" else configs) / "proj")
    engine.call_stage("fit", [str(path)])  # `project.data` and `project.probe` import from the chosen folder
    assert captured("fit")[0].state.finished


def test_project_without_init_is_a_namespace_package(tmp_path):
    folder = write_project(tmp_path)
    (folder / "__init__.py").unlink()
    engine.call_stage("fit", [str(write_yaml(tmp_path / "config.yaml", _runnable(tmp_path, project=str(folder))))])
    assert captured("fit")[0].state.finished


def test_project_is_reimported_for_each_config(tmp_path):
    first, second = write_project(tmp_path / "one"), write_project(tmp_path / "two")
    (first / "__init__.py").write_text("where = 'one'\n")
    (second / "__init__.py").write_text("where = 'two'\n")
    for folder in (first, second, first):
        engine.prepare("fit", [str(write_yaml(tmp_path / "config.yaml", _runnable(tmp_path, project=str(folder))))])
        assert sys.modules["project"].where == folder.parent.name


def _instantiate(tmp_path, extra, stage="fit", overrides=None):
    write_project(tmp_path)
    path = write_yaml(tmp_path / "config.yaml", _runnable(tmp_path) + extra)
    return engine.instantiate(engine.prepare(stage, [str(path)], overrides), record=False)


def test_disabled_components(tmp_path):
    extra = """
  scheduler: {_target_: torch.optim.lr_scheduler.StepLR, optimizer: "@system#optimizer", step_size: 1,
              _disabled_: true}
  metrics:
    train:
      - {_target_: torchmetrics.Accuracy, task: multiclass, num_classes: 3}
      - {_target_: torchmetrics.F1Score, task: multiclass, num_classes: 3, _disabled_: "true"}
"""
    experiment = _instantiate(
        tmp_path, extra, overrides=["trainer::callbacks=[{_target_: project.probe.Capture, _disabled_: true}]"]
    )
    assert experiment.system.scheduler is None
    assert list(experiment.system.train_metrics) == ["MulticlassAccuracy"]  # disabled list items are dropped
    assert not [c for c in experiment.trainer.callbacks if type(c).__name__ == "Capture"]


def test_requires_builds_dependencies_first(tmp_path):
    extra = """
  inferer:
    _target_: monai.inferers.SimpleInferer
    _requires_: ["@vars#first", "@vars#second"]
"""
    vars_extra = (
        "  first: {_target_: project.probe.counted, name: first}\n"
        "  second: {_target_: project.probe.counted, name: second}\n"
    )
    write_project(tmp_path)
    text = _runnable(tmp_path).replace("  width: 4\n", "  width: 4\n" + vars_extra) + extra
    path = write_yaml(tmp_path / "config.yaml", text)
    experiment = engine.instantiate(engine.prepare("fit", [str(path)]), record=False)
    assert sorted(probe().BUILT) == ["first", "second"]  # nothing refers to them except `_requires_`
    assert experiment.system.inferer is not None


@pytest.mark.parametrize(
    ("criterion", "check"),
    [
        pytest.param(
            "{_target_: torch.nn.functional.cross_entropy, _mode_: callable}",
            lambda c: c is torch.nn.functional.cross_entropy,
            id="callable",
        ),
        pytest.param(
            "{_target_: torch.nn.functional.cross_entropy, _mode_: callable, label_smoothing: 0.1}",
            lambda c: isinstance(c, functools.partial) and c.keywords == {"label_smoothing": 0.1},
            id="callable-with-kwargs-is-partial",
        ),
        pytest.param(
            "{_target_: torch.nn.CrossEntropyLoss, _mode_: default}",
            lambda c: isinstance(c, torch.nn.CrossEntropyLoss),
            id="default",
        ),
    ],
)
def test_mode_callable(tmp_path, criterion, check):
    experiment = _instantiate(tmp_path, "", overrides=[f"system::criterion={criterion}"])
    assert check(experiment.system.criterion)


def test_relative_macros_and_references_with_hash(tmp_path):
    write_project(tmp_path)
    text = _runnable(tmp_path).replace(
        "    train: {_target_: torch.utils.data.DataLoader",
        "    val: {_target_: torch.utils.data.DataLoader, dataset: '%##train#dataset',\n"
        "          batch_size: '@##train#batch_size'}\n"
        "    train: {_target_: torch.utils.data.DataLoader",
    )
    text += """
  metrics:
    train: [{_target_: torchmetrics.Accuracy, task: multiclass, num_classes: 3}]
    val: "%#train"
    test: "%#val"
"""
    config = engine.prepare("fit", [str(write_yaml(tmp_path / "config.yaml", text))]).config
    metrics = config["system"]["metrics"]
    assert metrics["val"] == metrics["train"] == metrics["test"]
    val = config["system"]["dataloaders"]["val"]
    assert val["dataset"] == {"_target_": "project.data.pairs"}
    assert val["batch_size"] == "@system::dataloaders::train::batch_size"

    engine.call_stage("fit", [str(tmp_path / "config.yaml")])
    _, system = captured("fit")
    assert system.val_dataloader().batch_size == 8
    assert list(system.val_metrics) == ["MulticlassAccuracy"]


def test_file_macro_is_relative_to_the_file_that_holds_it(tmp_path, monkeypatch):
    shared = write_yaml(tmp_path / "configs" / "shared.yaml", "model: {_target_: torch.nn.Linear, in_features: 4}\n")
    main = write_yaml(tmp_path / "configs" / "main.yaml", 'system:\n  model: "%shared.yaml#model"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_config([str(main)])
    assert loaded.data["system"]["model"] == {"_target_": "torch.nn.Linear", "in_features": 4}
    assert str(loaded.where("system::model::in_features")) == f"at {shared}:1"  # lines point into the part's file


def test_file_macro_parts_are_read_like_config_files(tmp_path):
    # `1e-3` is a float in a part as in the main file (MONAI's own reader would make it a string).
    write_yaml(tmp_path / "parts" / "opt.yaml", "optimizer: {_target_: torch.optim.SGD, lr: 1e-3}\n")
    write_yaml(tmp_path / "parts" / "all.yaml", 'inner: "%opt.yaml#optimizer"\n')  # a part that includes a part
    main = write_yaml(tmp_path / "main.yaml", 'system:\n  optimizer: "%parts/all.yaml::inner"\n')
    assert load_config([str(main)]).data["system"]["optimizer"] == {"_target_": "torch.optim.SGD", "lr": 0.001}


def test_trainer_and_system_targets_default(tmp_path):
    write_project(tmp_path)
    text = (
        _runnable(tmp_path)
        .replace("  _target_: pytorch_lightning.Trainer\n", "")
        .replace("  _target_: lighter.System\n", "")
    )
    assert "_target_: lighter.System" not in text and "_target_: pytorch_lightning.Trainer" not in text
    experiment = engine.instantiate(engine.prepare("fit", [str(write_yaml(tmp_path / "c.yaml", text))]), record=False)
    assert type(experiment.trainer).__name__ == "Trainer" and experiment.trainer.max_epochs == 1
    assert type(experiment.system).__name__ == "System"
    bare = write_yaml(tmp_path / "d.yaml", "system: {model: {}}\n")  # too little to run: only read, as `show` does
    assert engine.prepare("fit", [str(bare)], imports=False).config["trainer"] == {
        "_target_": "pytorch_lightning.Trainer"
    }


@pytest.mark.parametrize(
    ("typed", "files", "overrides"),
    [
        pytest.param(["a.yaml,b.yaml"], ("a.yaml", "b.yaml"), (), id="comma-joined-files"),
        pytest.param(["a.yaml", "x::y=1", "~z"], ("a.yaml",), ("x::y=1", "~z"), id="positional-overrides"),
        pytest.param(["lr=0.1.yaml"], ("lr=0.1.yaml",), (), id="existing-file-named-like-an-override"),
    ],
)
def test_config_args_are_split_once_and_passed_on_as_they_are(tmp_path, monkeypatch, typed, files, overrides):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lr=0.1.yaml").write_text("x: 1\n")
    split = split_config_args(typed)
    assert split == ConfigArgs(tuple(typed), files, overrides)
    assert split_config_args(split) is split  # the CLI splits; the engine and the loader take the split as it is
