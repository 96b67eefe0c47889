"""Sweep results: final and best values per trial from its logs, and mean ± std over an experiment's seeds."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from lighter.sweep.expand import expand
from lighter.sweep.results import collect, short_name, summarize, trial_values

CONFIG = """\
project: {project}
seed: [0, 1, 2, 3]
system:
  optimizer: {{_target_: torch.optim.SGD, lr: 0.1}}
"""
# Per trial (by seed): val accuracy and val loss per epoch, as the CSV logger writes them.
ACCURACY = {0: [0.5, 0.7, 0.6], 1: [0.4, 0.8, 0.8], 2: [0.6, 0.65, 0.9], 3: [0.1, 0.1, 0.1]}
LOSS = {0: [1.0, 0.8, 0.9], 1: [1.2, 0.7, 0.75], 2: [0.9, 0.85, 0.6], 3: [3.0, 3.0, 3.0]}


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def finished_run(trial, accuracy: list[float], loss: list[float]) -> None:
    """What a fit leaves in a trial: metrics.csv (step rows, then epoch rows), batch_log.csv, run.yaml finished."""
    trial.mark_running()
    header = ["epoch", "step", "val/loss/epoch", "val/loss/step", "val/metrics/accuracy/epoch", "train/loss/step"]
    rows = []
    for epoch, (acc, los) in enumerate(zip(accuracy, loss, strict=True)):
        rows.append(["", epoch * 10, "", 9.0, "", 5.0])  # step values must not count
        rows.append([epoch, epoch * 10 + 9, los, "", acc, ""])
    write_csv(trial.dir / "metrics.csv", header, rows)
    write_csv(trial.dir / "batch_log.csv", ["epoch", "mode", "batch", "step", "loss"], [[0, "train", 0, 0, 1.0]])
    (trial.dir / "run.yaml").write_text("status: finished\n")
    trial.mark_done()


@pytest.fixture
def experiment(tmp_path):
    leaf = tmp_path / "cascade" / "experiment" / "digits" / "cnn"
    leaf.mkdir(parents=True)
    (leaf / "cfg.yaml").write_text(CONFIG.format(project=tmp_path))
    out = tmp_path / "out"
    trials = expand(tmp_path / "cascade", out)
    for seed, trial in enumerate(trials[:3]):
        finished_run(trial, ACCURACY[seed], LOSS[seed])
    trials[3].mark_running()  # seed 3 failed after logging: it must not enter the mean
    write_csv(trials[3].dir / "metrics.csv", ["epoch", "val/loss/epoch"], [[0, 3.0]])
    trials[3].mark_failed(1, "RuntimeError: boom")
    return out, trials


def test_final_and_best_per_trial(experiment):
    _, trials = experiment
    assert trial_values(trials[0].dir) == {
        "val/accuracy/final": 0.6,
        "val/accuracy/best": 0.7,
        "val/loss/final": 0.9,
        "val/loss/best": 0.8,
    }


def test_experiment_mean_and_std_match_hand_computed(experiment):
    _, trials = experiment
    (summary,) = summarize(collect(trials))
    assert summary.leaf == "experiment/digits/cnn" and summary.n == 3
    # By hand: final accuracies 0.6, 0.8, 0.9: mean 2.3/3, deviations -1/6, 1/30, 2/15, squares sum to 42/900.
    mean, std, n = summary.stats["val/accuracy/final"]
    assert n == 3 and mean == pytest.approx(2.3 / 3) and std == pytest.approx(math.sqrt(42 / 900 / 2))
    # Best accuracies 0.7, 0.8, 0.9; best (lowest) losses 0.8, 0.7, 0.6: both mean ± 0.1.
    assert summary.stats["val/accuracy/best"][:2] == pytest.approx((0.8, 0.1))
    assert summary.stats["val/loss/best"][:2] == pytest.approx((0.7, 0.1))
    assert summary.stats["val/loss/final"][:2] == pytest.approx((0.75, 0.15))


def test_batch_log_is_the_fallback(tmp_path):
    rows = [
        [0, "train", 0, 0, 2.0, 0.1],
        [0, "val", 0, 1, 1.0, 0.5],
        [0, "val", 1, 1, 2.0, 0.7],
        [1, "val", 0, 2, 0.5, 0.9],
        [1, "val", 1, 2, 1.5, 0.7],
        [1, "test", 0, 2, 0.25, 1.0],
        [1, "test", 1, 2, 0.75, 0.5],
    ]
    write_csv(tmp_path / "batch_log.csv", ["epoch", "mode", "batch", "step", "loss", "accuracy"], rows)
    assert trial_values(tmp_path) == pytest.approx(
        {
            "val/loss/final": 1.0,
            "val/loss/best": 1.0,
            "val/accuracy/final": 0.8,
            "val/accuracy/best": 0.8,
            "test/loss": 0.5,
            "test/accuracy": 0.75,
        }
    )


@pytest.mark.parametrize(
    "column, expected",
    [
        pytest.param("val/metrics/accuracy/epoch", ("val", "accuracy"), id="lighter-0.0.4-epoch"),
        pytest.param("val/loss/epoch", ("val", "loss"), id="loss-epoch"),
        pytest.param("val/metrics/accuracy/step", None, id="step-value"),
        pytest.param("val/loss", ("val", "loss"), id="older-loss"),
        pytest.param("val/metrics/accuracy", ("val", "accuracy"), id="older-metric"),
        pytest.param("test/metrics/dice/epoch", ("test", "dice"), id="test"),
        pytest.param("train/loss/epoch", None, id="train"),
        pytest.param("epoch", None, id="not-a-metric"),
    ],
)
def test_metric_column_names(column, expected):
    assert short_name(column) == expected


def test_cli_results_prints_mean_std_and_writes_csv(experiment, tmp_path, cli):
    out, _ = experiment
    done = cli(["sweep", "results", str(out), "--csv", str(tmp_path / "r.csv")])
    assert done.returncode == 0, done.stderr
    assert "0.7667 ± 0.15 (n=3)" in done.stdout
    with (tmp_path / "r.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["done", "done", "done", "failed"]
    assert float(rows[1]["val/accuracy/final"]) == 0.8 and rows[1]["seed"] == "1"
    with (tmp_path / "r_summary.csv").open() as f:
        (summary,) = list(csv.DictReader(f))
    assert summary["n"] == "3" and float(summary["val/accuracy/best/mean"]) == pytest.approx(0.8)


def test_cli_results_of_a_missing_folder_exits_2(tmp_path, cli):
    done = cli(["sweep", "results", str(tmp_path / "nope")])
    assert done.returncode == 2 and "does not exist" in done.stderr
