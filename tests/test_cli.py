"""The `lighter` command end to end: in this process through `main(argv)`; in a subprocess (`python -m lighter`, the
console script) where what the process imports or how it starts is the point."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import warnings
from importlib import metadata

import pytest
import yaml
from conftest import classifier_config, logged, read_metrics, run_cli, write_yaml

from lighter.cli import COMMANDS, main

HEAVY = ("torch", "pytorch_lightning", "lightning", "monai", "torchmetrics")


def _imported(importtime_stderr: str) -> set[str]:
    """Top-level package names from `python -X importtime` output (`import time: self | cumulative | name`)."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        pytest.param(["--help"], 0, ["usage: lighter COMMAND", "fit", "validate", "test", "predict"], id="help"),
        pytest.param(["-h"], 0, ["usage: lighter COMMAND", "fit", "predict"], id="short-help"),
        pytest.param([], 2, ["usage: lighter COMMAND", "fit", "predict"], id="bare-lighter-exits-2"),
        pytest.param(["fit", "--help"], 0, ["usage: lighter fit CONFIG", "Train the system"], id="fit-help"),
        pytest.param(["predict", "-h"], 0, ["usage: lighter predict CONFIG", "predict"], id="predict-help"),
        pytest.param(["--version"], 0, ["lighter ", "torch ", "pytorch-lightning "], id="version"),
    ],
)
def test_help_prints_usage_without_importing_torch(tmp_path, argv, code, expected):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lighter", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == code, done.stderr[-2000:]
    for word in expected:
        assert word in done.stdout  # help goes to stdout, so `lighter --help | less` works
    imported = _imported(done.stderr)
    assert "lighter" in imported  # the measurement works
    assert not imported & {*HEAVY, "fire"}, imported & {*HEAVY, "fire"}


def test_console_script_help(tmp_path):
    done = run_cli(["fit", "--help"], tmp_path, console_script=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: lighter fit CONFIG")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_help_teaches(capsys, name):
    main([*name.split(" "), "--help"])
    text = capsys.readouterr().out
    assert text.startswith(f"usage: lighter {name} ")
    assert "Flags are accepted" not in text and "Type: 'str'" not in text  # fire's help is never shown
    examples = text.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in examples.splitlines() if line.startswith(f"  lighter {name}")]
    assert len(lines) >= 3, examples
    if COMMANDS[name].takes_config:
        assert any("::" in line and "=" in line for line in lines), "an override example"
        assert any(line.count(".yaml") >= 2 for line in lines), "a second config file example"
        assert any("=[" in line for line in lines), "a list value example"
        assert "lighter show CONFIG" in text and "trainer::" in text and "system::" in text
    for option in COMMANDS[name].options:  # every advertised option is one the parser knows
        assert option.usage() in text


def test_version_names_the_installed_versions(capsys):

    main(["--version"])
    lines = capsys.readouterr().out.splitlines()
    for package in ("lighter", "torch", "pytorch-lightning"):
        assert f"{package} {metadata.version(package)}" in lines


def test_test_and_predict_help_show_a_run_directory_example(capsys):
    for stage in ("test", "predict"):
        main([stage, "--help"])
        assert f"lighter {stage} runs/" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["show", "{a}", "-x"], "unknown option '-x' for `lighter show`. Its options: -t, --trust", id="x"),
        pytest.param(["show", "{a}", "--trust=yes"], "--trust is a flag and takes no value", id="flag-value"),
        pytest.param(["check", "{a}", "--stage"], "--stage needs a value: --stage STAGE", id="missing-value"),
        pytest.param(["sweeep", "{a}"], "unknown command 'sweeep'", id="unknown-command"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, argv, message):
    a = write_yaml(tmp_path / "a.yaml", {"trainer": {"max_epochs": 3}})
    with pytest.raises(SystemExit) as exit_info:
        main([arg.format(a=a) for arg in argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["show", "{a}", "--trust", "trainer::max_epochs=2"], id="trust-then-override"),
        pytest.param(["show", "{a}", "-t", "trainer::max_epochs=2"], id="short-trust-then-override"),
        pytest.param(["show", "trainer::max_epochs=2", "-t", "{a}"], id="trust-between"),
    ],
)
def test_trust_is_a_flag_that_takes_no_value(tmp_path, capsys, argv):
    # Issue 11: fire used to read the override after `--trust` as its value, and drop it.
    a = write_yaml(tmp_path / "a.yaml", {"trainer": {"max_epochs": 3}})
    main([arg.format(a=a) for arg in argv])
    out = capsys.readouterr().out
    assert "# Modules imported through _target_" in out  # the trust summary is there, as YAML comments
    assert yaml.safe_load(out)["trainer"]["max_epochs"] == 2


def test_config_path_with_equals_sign_is_a_path(tmp_path, capsys):
    folder = tmp_path / "lr=0.1"
    folder.mkdir()
    a = write_yaml(folder / "config.yaml", {"trainer": {"max_epochs": 3}})
    main(["show", str(a), "trainer::devices=1"])
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    assert (trainer["max_epochs"], trainer["devices"]) == (3, 1)


@pytest.mark.parametrize(
    ("command", "suggestion"),
    [
        pytest.param("fitt", "'fit'", id="fitt"),
        pytest.param("tset", "'test'", id="tset"),
        pytest.param("predcit", "'predict'", id="predcit"),
        pytest.param("validat", "'validate'", id="validat"),
    ],
)
def test_unknown_command_says_did_you_mean(cli, command, suggestion):
    done = cli([command, "config.yaml"])
    assert done.returncode != 0
    assert "did you mean" in done.stderr.lower() and suggestion in done.stderr, done.stderr


def _cli_config(tmp_path):
    config = classifier_config(tmp_path, epochs=3)
    config["trainer"]["enable_checkpointing"] = True
    config["trainer"]["callbacks"] = [
        {
            "_target_": "pytorch_lightning.callbacks.ModelCheckpoint",
            "dirpath": str(tmp_path / "ckpt"),
            "filename": "last",
            "enable_version_counter": False,
        }
    ]
    config["system"]["metrics"] = {
        "train": {"acc": {"_target_": "torchmetrics.Accuracy", "task": "multiclass", "num_classes": 3}},
        "val": "%#train",
        "test": "%#train",
    }
    return config


def test_fit_then_test_end_to_end(tmp_path, cli):
    config = _cli_config(tmp_path)
    base = write_yaml(tmp_path / "base.yaml", config)
    extra = write_yaml(tmp_path / "extra.yaml", {"trainer": {"max_epochs": 5}})

    # Two files as a comma list; `#` and `--` overrides, one of them `1e-3`.
    fit = cli(["fit", f"{base},{extra}", "trainer#max_epochs=2", "--system::optimizer::lr=1e-3"])
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    rows = read_metrics(tmp_path)
    assert [row["epoch"] for row in rows if "val/loss/epoch" in row] == [0, 1]
    assert logged(rows, "train/optimizer/SGD/lr") == pytest.approx([1e-3, 1e-3])
    assert len(logged(rows, "train/metrics/acc/epoch")) == 2

    # Files as separate arguments; the checkpoint through an override.
    test = cli(["test", str(base), str(extra), f"args::test::ckpt_path={tmp_path / 'ckpt' / 'last.ckpt'}"])
    assert test.returncode == 0, test.stderr[-3000:]
    assert "test/metrics/acc/epoch" in test.stdout + test.stderr  # Lightning's results table


def test_failing_run_exits_non_zero(tmp_path, cli):
    # MSELoss on class indices: torch refuses the dtypes inside the first training step.
    path = write_yaml(tmp_path / "config.yaml", _cli_config(tmp_path))
    done = cli(["fit", str(path), "system::criterion={_target_: torch.nn.MSELoss}"])
    assert done.returncode != 0
    assert "RuntimeError" in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "ckpt" / "last.ckpt").exists()


def test_missing_config_file_exits_non_zero(cli):
    done = cli(["fit", "nowhere.yaml"])
    assert done.returncode != 0
    assert "Traceback" not in done.stderr


def test_override_forms_reach_the_config(tmp_path, capsys):
    # `lighter show` prints the config that would run. Called through `main(argv)`, the arguments take the
    # real path through fire, which would otherwise read `#` as a comment and `[..]` as Python.
    a = write_yaml(tmp_path / "a.yaml", {"trainer": {"max_epochs": 3, "devices": 1}, "system": {"optimizer": {}}})
    b = write_yaml(tmp_path / "b.yaml", {"trainer": {"max_epochs": 4}})
    main(
        [
            "show",
            f"{a},{b}",
            "trainer#max_epochs=2",
            "--system::optimizer::lr=1e-3",
            "system#optimizer#betas=[0.8, 0.99]",
            "vars::obj={_target_: torch.nn.Identity}",
            "vars::none=null",
            "vars::no=false",
            "vars::text=hello world",
            "vars::quoted='5'",
            "vars::ref=@system#optimizer",
            "vars::expr=$@system#optimizer['lr'] * 2",
            "--vars::macro=%system#optimizer#lr",
            "~trainer::devices",
        ]
    )
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["trainer"]["max_epochs"] == 2
    assert "devices" not in shown["trainer"]
    assert shown["system"]["optimizer"] == {"lr": 1e-3, "betas": [0.8, 0.99]}
    assert shown["vars"] == {
        "obj": {"_target_": "torch.nn.Identity"},
        "none": None,
        "no": False,
        "text": "hello world",
        "quoted": "5",
        "ref": "@system::optimizer",
        "expr": "$@system::optimizer['lr'] * 2",
        "macro": 1e-3,  # `show` prints the config with macros expanded
    }


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--config", "{a}", "trainer::max_epochs=2"], id="config-flag"),
        pytest.param(["--config={a}", "trainer::max_epochs=2"], id="config-flag-equals"),
        pytest.param(["--config", "{a}", "{b}"], id="config-flag-then-more-files"),
    ],
)
def test_config_given_as_flag(tmp_path, capsys, argv):
    # Lighter's own CLI takes `--config FILE`; commands written for it keep working.
    a = write_yaml(tmp_path / "a.yaml", {"trainer": {"max_epochs": 3, "devices": 1}})
    b = write_yaml(tmp_path / "b.yaml", {"trainer": {"max_epochs": 2}})
    main(["show", *(arg.format(a=a, b=b) for arg in argv)])
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["trainer"]["max_epochs"] == 2
    assert shown["trainer"]["devices"] == 1


@pytest.mark.parametrize(
    "flag",
    [
        pytest.param(["-s", "validate"], id="short"),
        pytest.param(["--stage", "validate"], id="long"),
        pytest.param(["--stage=validate"], id="long-equals"),
    ],
)
def test_check_stage_option_in_every_form(tmp_path, capsys, flag):
    config = write_yaml(tmp_path / "c.yaml", classifier_config(tmp_path))
    main(["check", str(config), *flag, "trainer::max_epochs=2"])
    assert "`lighter validate` builds and runs one batch" in capsys.readouterr().out


def _process_state() -> tuple:
    """What a run may change in its process: environment, cwd, argv, signal handlers, warning and logging filters."""
    return (
        dict(os.environ),
        os.getcwd(),
        list(sys.argv),
        {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)},
        list(warnings.filters),
        list(logging.getLogger().handlers),
        list(logging.getLogger("pytorch_lightning.utilities.rank_zero").filters),
    )


def test_the_in_process_cli_gives_back_what_a_run_changes(tmp_path, cli):
    # conftest's `cli` runs `lighter fit` as a new process would, then restores this process: a later test must not
    # see the run's directory variable, signal handlers, warning filters or logging handlers.
    path = write_yaml(tmp_path / "config.yaml", classifier_config(tmp_path))
    before = _process_state()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli(["fit", str(path)], cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Run directory:" in done.stdout  # what the run printed was captured
    after = _process_state()
    assert after == before

    failed = cli(["fit", str(path), "system::criterion={_target_: torch.nn.MSELoss}"])
    assert failed.returncode == 1 and "Traceback" in failed.stderr  # an uncaught error: its traceback, exit 1
