"""The `lighter` command end to end, in a subprocess: `python -m lighter` and the console script."""

from __future__ import annotations

import sys

import pytest
import yaml
from conftest import classifier_config, logged, read_metrics, run_cli, write_yaml

from lighter.cli import main

HEAVY = ("torch", "pytorch_lightning", "lightning", "monai", "torchmetrics")


def _imported(importtime_stderr: str) -> set[str]:
    """Top-level package names from `python -X importtime` output (`import time: self | cumulative | name`)."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["--help"], ["fit", "validate", "test", "predict"], id="help"),
        pytest.param(["-h"], ["fit", "validate", "test", "predict"], id="short-help"),
        pytest.param([], ["fit", "validate", "test", "predict"], id="no-arguments"),
        pytest.param(["fit", "--help"], ["lighter fit", "CONFIGS", "Train the system"], id="fit-help"),
        pytest.param(["predict", "-h"], ["lighter predict", "CONFIGS", "predict"], id="predict-help"),
    ],
)
def test_help_prints_usage_without_importing_torch(tmp_path, argv, expected):
    import subprocess

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lighter", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for word in expected:
        assert word in done.stdout + done.stderr  # fire writes help to stderr
    imported = _imported(done.stderr)
    assert "lighter" in imported  # the measurement works
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_console_script_help(tmp_path):
    done = run_cli(["fit", "--help"], tmp_path, console_script=True)
    assert done.returncode == 0, done.stderr
    assert "lighter fit" in done.stdout and "CONFIGS" in done.stdout  # help goes to stdout, so `| less` works


@pytest.mark.parametrize(
    ("command", "suggestion"),
    [
        pytest.param("fitt", "'fit'", id="fitt"),
        pytest.param("tset", "'test'", id="tset"),
        pytest.param("predcit", "'predict'", id="predcit"),
        pytest.param("validat", "'validate'", id="validat"),
    ],
)
def test_unknown_command_says_did_you_mean(tmp_path, command, suggestion):
    done = run_cli([command, "config.yaml"], tmp_path)
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


def test_fit_then_test_end_to_end(tmp_path):
    config = _cli_config(tmp_path)
    base = write_yaml(tmp_path / "base.yaml", config)
    extra = write_yaml(tmp_path / "extra.yaml", {"trainer": {"max_epochs": 5}})

    # The console script; two files as a comma list; `#` and `--` overrides, one of them `1e-3`.
    fit = run_cli(
        ["fit", f"{base},{extra}", "trainer#max_epochs=2", "--system::optimizer::lr=1e-3"],
        tmp_path,
        console_script=True,
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    rows = read_metrics(tmp_path)
    assert [row["epoch"] for row in rows if "val/loss" in row] == [0, 1]
    assert logged(rows, "train/lr") == pytest.approx([1e-3, 1e-3])
    assert len(logged(rows, "train/metrics/acc_epoch")) == 2

    # `python -m lighter`; files as separate arguments; the checkpoint through an override.
    test = run_cli(
        ["test", str(base), str(extra), f"args::test::ckpt_path={tmp_path / 'ckpt' / 'last.ckpt'}"], tmp_path
    )
    assert test.returncode == 0, test.stderr[-3000:]
    assert "test/metrics/acc" in test.stdout + test.stderr  # Lightning's results table


def test_failing_run_exits_non_zero(tmp_path):
    # MSELoss on class indices: torch refuses the dtypes inside the first training step.
    path = write_yaml(tmp_path / "config.yaml", _cli_config(tmp_path))
    done = run_cli(["fit", str(path), "system::criterion={_target_: torch.nn.MSELoss}"], tmp_path)
    assert done.returncode != 0
    assert "RuntimeError" in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "ckpt" / "last.ckpt").exists()


def test_missing_config_file_exits_non_zero(tmp_path):
    done = run_cli(["fit", "nowhere.yaml"], tmp_path)
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
