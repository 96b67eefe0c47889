"""What a run shows on the terminal: progress without a TTY, the bar's names, hidden noise, the tuner, checkpoints."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch
from conftest import REPO, accuracy, captured, classifier_config, write_yaml

from lighter.engine import call_stage
from lighter.errors import ConfigError
from lighter.utils.metric_names import shorten, split_name

DIGITS = REPO / "configs" / "digits.yaml"
SLOW = 900  # the digits example takes ~10 s alone, much longer on a shared machine


def _metrics_config(tmp_path: Path, **trainer) -> dict:
    config = classifier_config(tmp_path, epochs=2)
    config["trainer"].update(trainer)
    config["system"]["metrics"] = {"train": {"accuracy": accuracy()}, "val": "%::train"}
    return config


@pytest.mark.parametrize(
    ("logged", "short", "reduction"),
    [
        pytest.param("val/metrics/accuracy/epoch", "val/accuracy", "epoch", id="upstream-metric"),
        pytest.param("train/loss/step", "train/loss", "step", id="upstream-loss"),
        pytest.param("train/loss_step", "train/loss", "step", id="lightning-suffix"),
        pytest.param("val/metrics/accuracy", "val/accuracy", None, id="no-reduction"),
        pytest.param("val/loss/ce/epoch", "val/loss/ce", "epoch", id="loss-term"),
        pytest.param("metrics", "metrics", None, id="a-metric-named-metrics"),
    ],
)
def test_short_metric_names(logged, short, reduction):
    assert split_name(logged) == (short, reduction)


def test_shorten_prefers_the_asked_reduction():
    metrics = {"train/loss/step": torch.tensor(2.0), "train/loss/epoch": torch.tensor(1.0), "text": "x"}
    assert shorten(metrics, prefer="step") == {"train/loss": 2.0}
    assert shorten(metrics, prefer="epoch") == {"train/loss": 1.0}


@pytest.mark.slow
def test_digits_without_a_terminal_prints_a_line_per_epoch_no_noise_and_a_summary(tmp_path, cli):
    # Captured output is not a TTY, as in a SLURM log: no bar redraws, one line per epoch, under 10 KB in all.
    fit = cli(["fit", str(DIGITS)], cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    output = fit.stdout + fit.stderr
    assert len(output.encode()) < 10_000, len(output.encode())
    assert "\r" not in output
    # (On a slow machine an epoch also gets `Epoch 3/7  batch 25/40 ...` lines, one a minute.)
    lines = [line for line in fit.stdout.splitlines() if line.startswith("Epoch ") and "  batch " not in line]
    assert [line.split()[1] for line in lines] == [f"{n}/7" for n in range(8)]
    assert all(re.search(r"train/loss \S+ .*val/loss \S+ +val/accuracy 0\.\d+", line) for line in lines), lines
    for noise in ("💡", "LeafSpec", "log_every_n_steps", "v_num"):
        assert noise not in output

    # The summary comes last: where the run went, the best checkpoint and its score, what to run next.
    summary = _summary(fit.stdout)
    run_dir = tmp_path / summary["Run directory"]
    assert (run_dir / "run.yaml").is_file()
    best = re.fullmatch(r"(\S+) \(val/accuracy (0\.\d+)\)", summary["Best checkpoint"])
    assert best and (tmp_path / best.group(1)).is_file() and float(best.group(2)) > 0.9
    final = r"train/loss \S+  train/accuracy \S+  val/loss \S+  val/accuracy \S+"
    assert re.fullmatch(final, summary["Final metrics"]), summary["Final metrics"]
    rel = summary["Run directory"]
    assert summary["Next"] == [f"lighter test {rel}", f"lighter predict {rel}"]

    for stage, metrics in (
        ("validate", r"val/loss \S+  val/accuracy \S+"),
        ("test", r"test/accuracy \S+"),
        ("predict", ""),
    ):
        done = cli([stage, str(DIGITS)], cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        summary = _summary(done.stdout)
        assert (tmp_path / summary["Run directory"] / "run.yaml").is_file()
        assert summary["Run directory"] != rel and "Next" not in summary
        assert re.fullmatch(metrics, summary.get("Final metrics", "")), summary
    written = re.fullmatch(r"(\S+) \((\d+) items, TableWriter\)", summary["Predictions"])
    assert written and int(written.group(2)) == 270
    assert len((tmp_path / written.group(1)).read_text().splitlines()) == 270 + 1  # and a header


def _summary(stdout: str) -> dict:
    """The summary (the last block of stdout) as {label: value}; `Next` holds a list of commands."""
    rows: dict = {}
    for line in stdout.rstrip().rsplit("\n\n", 1)[-1].strip("\n").splitlines():
        if line.startswith(" "):  # another command under `Next:`
            rows["Next"].append(line.strip())
            continue
        label, _, value = line.partition(":  ")
        rows[label] = [value.strip()] if label == "Next" else value.strip()
    return rows


@pytest.mark.parametrize(
    ("argv", "env", "shown"),
    [
        pytest.param([], {}, False, id="quiet"),
        pytest.param(["--verbose"], {}, True, id="verbose-flag"),
        pytest.param([], {"LIGHTER_VERBOSE": "1"}, True, id="verbose-env"),
    ],
)
def test_noise_is_hidden_unless_verbose(tmp_path, monkeypatch, argv, env, shown, cli):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # A warning from the user's own config stays, whatever the mode.
    own = "$__import__('warnings').warn('check the data folder') or 2"
    config = write_yaml(tmp_path / "c.yaml", _metrics_config(tmp_path, log_every_n_steps=50, max_epochs=own))
    done = cli(["fit", str(config), *argv], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("💡 Tip" in done.stderr) is shown
    assert ("smaller than the logging interval" in done.stderr) is shown
    assert "check the data folder" in done.stderr


@pytest.mark.parametrize(
    "bar",
    [
        pytest.param("lighter.callbacks.ProgressBar", id="tqdm"),
        pytest.param("lighter.callbacks.RichProgressBar", id="rich"),
    ],
)
def test_a_bar_named_in_the_config_shows_short_names_and_val_metrics(tmp_path, bar, cli):
    config = _metrics_config(tmp_path, enable_progress_bar=True)
    config["trainer"]["callbacks"].append({"_target_": bar})
    done = cli(["fit", str(write_yaml(tmp_path / "c.yaml", config))], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "val/accuracy" in done.stdout and "train/loss" in done.stdout
    for long_name in ("v_num", "/step", "/epoch", "_step", "metrics/"):
        assert long_name not in done.stdout


def test_progress_log_every_few_seconds_inside_an_epoch(tmp_path, capsys):
    config = _metrics_config(tmp_path, enable_progress_bar=True)
    config["trainer"]["callbacks"].append({"_target_": "lighter.callbacks.ProgressLog", "every_s": 0})
    call_stage("fit", str(write_yaml(tmp_path / "c.yaml", config)))
    out = capsys.readouterr().out
    assert re.search(r"^Epoch 0/1  batch 1/2  \S+s  train/loss \S+$", out, re.M), out
    assert re.search(
        r"^Epoch 1/1  \S+s  train/loss \S+  train/accuracy \S+  val/loss \S+  val/accuracy \S+$", out, re.M
    )


@pytest.mark.parametrize(
    ("callbacks", "expected"),
    [
        pytest.param([], "ProgressLog", id="default-without-a-tty"),
        pytest.param([{"_target_": "pytorch_lightning.callbacks.TQDMProgressBar"}], "TQDMProgressBar", id="named"),
    ],
)
def test_default_progress_without_a_tty_is_lines_and_a_named_bar_stays(tmp_path, callbacks, expected):
    config = _metrics_config(tmp_path, enable_progress_bar=True, max_epochs=1)
    config["trainer"]["callbacks"] += callbacks
    call_stage("fit", str(write_yaml(tmp_path / "c.yaml", config)))
    trainer, _ = captured("fit")
    assert type(trainer.progress_bar_callback).__name__ == expected


def _config_digest() -> str:
    return hashlib.sha256(DIGITS.read_bytes()).hexdigest()


def test_lr_find_on_digits_prints_the_suggestion_and_saves_the_plot(tmp_path, cli):
    before = _config_digest()
    done = cli(["lr_find", str(DIGITS), "args::lr_find::num_training=30"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(
        r"suggested learning rate (\S+)\n  use it: lighter fit \S+digits.yaml \S+ system::optimizer::lr=(\S+)",
        done.stdout,
    )
    assert found, done.stdout[-2000:]
    assert float(found.group(1)) == float(found.group(2)) > 0
    plot = Path(re.search(r"plot: +(\S+)", done.stdout).group(1))
    assert plot.is_file() and plot.read_bytes()[:4] == b"\x89PNG"
    assert _config_digest() == before


def test_scale_batch_size_on_digits_prints_the_largest_size(tmp_path, cli):
    before = _config_digest()
    args = ["args::scale_batch_size::max_trials=3", "args::scale_batch_size::steps_per_trial=1"]
    done = cli(["scale_batch_size", str(DIGITS), *args], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(
        r"largest batch size that fits is (\d+)\n  use it: lighter fit .* vars::batch_size=(\d+)", done.stdout
    )
    assert found, done.stdout[-2000:]
    # power mode from 2, three trials (2, 4, 8): memory on this machine never runs out first.
    assert int(found.group(1)) == int(found.group(2)) == 8
    assert _config_digest() == before


@pytest.mark.parametrize(
    ("callback", "check"),
    [
        pytest.param(
            {"_target_": "pytorch_lightning.callbacks.LearningRateFinder", "num_training_steps": 30},
            lambda system, trainer, finder: (
                system.lr == trainer.optimizers[0].param_groups[0]["lr"] == finder.optimal_lr.suggestion() != 0.1
            ),
            id="learning-rate-finder",
        ),
        pytest.param(
            {"_target_": "pytorch_lightning.callbacks.BatchSizeFinder", "max_trials": 2, "steps_per_trial": 1},
            lambda system, trainer, finder: (
                system.batch_size == trainer.train_dataloader.batch_size == finder.optimal_batch_size == 4
            ),
            id="batch-size-finder",
        ),
    ],
)
def test_lightning_finder_callbacks_read_and_set_the_system(tmp_path, callback, check):
    # Before the System had `lr` and `batch_size`, both callbacks stopped with a raw AttributeError.
    config = _metrics_config(tmp_path, max_epochs=1)
    config["system"]["dataloaders"]["train"]["dataset"]["n"] = 256
    config["trainer"]["callbacks"].append(callback)
    call_stage("fit", str(write_yaml(tmp_path / "c.yaml", config)))
    trainer, system = captured("fit")
    finder = next(c for c in trainer.callbacks if type(c).__name__ == callback["_target_"].rsplit(".", 1)[1])
    assert check(system, trainer, finder)


def test_lr_setter_scales_every_param_group(tmp_path):
    config = classifier_config(tmp_path)
    config["system"]["optimizer"]["params"] = (
        "$[{'params': [@system::model.weight]}, {'params': [@system::model.bias], 'lr': 0.01}]"
    )
    call_stage("fit", str(write_yaml(tmp_path / "c.yaml", config)))
    _, system = captured("fit")
    system.lr = 1.0
    assert [g["lr"] for g in system.optimizer.param_groups] == pytest.approx([1.0, 0.1])
    assert system.learning_rate == 1.0


def _compiled(config: dict) -> dict:
    model = config["system"]["model"]
    config["system"]["model"] = {"_target_": "torch.compile", "model": model, "backend": "eager"}
    return config


@pytest.mark.parametrize(
    ("train", "load"),
    [
        pytest.param(_compiled, lambda c: c, id="compiled-to-plain"),
        pytest.param(lambda c: c, _compiled, id="plain-to-compiled"),
        pytest.param(_compiled, _compiled, id="compiled-to-compiled"),
    ],
)
def test_checkpoints_load_across_torch_compile(tmp_path, train, load):
    fit_config = train(classifier_config(tmp_path))
    fit_config["trainer"]["enable_checkpointing"] = True
    call_stage("fit", str(write_yaml(tmp_path / "fit.yaml", fit_config)), run_dir=tmp_path / "r")
    ckpt = next((tmp_path / "r" / "checkpoints").glob("*.ckpt"))
    trained = torch.load(ckpt, weights_only=False)["state_dict"]
    test_config = load(classifier_config(tmp_path))
    test_config["args"] = {"test": {"ckpt_path": str(ckpt)}}
    call_stage("test", str(write_yaml(tmp_path / "test.yaml", test_config)))
    _, system = captured("test")
    plain = {k.replace("_orig_mod.", ""): v for k, v in trained.items()}
    for name, value in system.state_dict().items():
        assert torch.equal(value, plain[name.replace("_orig_mod.", "")]), name


@pytest.mark.parametrize("ckpt", ["best", "last"])
def test_best_or_last_in_a_new_process_names_the_run_directory_way(tmp_path, ckpt):
    config = classifier_config(tmp_path)
    config["args"] = {"test": {"ckpt_path": ckpt}}
    with pytest.raises(ConfigError, match="args::test::ckpt_path") as err:
        call_stage("test", str(write_yaml(tmp_path / "c.yaml", config)))
    assert "`lighter test RUN_DIR`" in err.value.render() and f"'{ckpt}'" in err.value.render()


STOPPER = '''
import os
import signal

import pytorch_lightning as pl


class StopAfterFirstEpoch(pl.Callback):
    """What SLURM does at a job's time limit: SIGTERM to the process."""

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            os.kill(os.getpid(), signal.SIGTERM)
'''


def test_a_stopped_fit_says_how_to_resume(tmp_path, cli):
    config = _metrics_config(tmp_path, max_epochs=3)
    (Path(config["project"]) / "stopper.py").write_text(STOPPER)
    config["trainer"]["callbacks"].append({"_target_": "project.stopper.StopAfterFirstEpoch"})
    done = cli(["fit", str(write_yaml(tmp_path / "c.yaml", config))], cwd=tmp_path)
    assert done.returncode == 143, done.stderr[-3000:]
    summary = _summary(done.stdout)
    run_dir, _, status = summary["Run directory"].partition(" ")
    assert status == "(interrupted)" and (tmp_path / run_dir / "run.yaml").is_file()
    assert summary["Next"] == [f"lighter resume {run_dir}"]
    assert "Last metrics" in summary
