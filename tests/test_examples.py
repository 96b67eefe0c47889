"""The README's main example, shortened: configs/digits.yaml through fit, test and predict with the real CLI."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import REPO

DIGITS = str(REPO / "configs" / "digits.yaml")
TEST_SAMPLES = 270  # the last 15% of scikit-learn's 1,797 digits (projects/digits/data.py)


def test_digits_example_fits_tests_and_predicts(tmp_path: Path, cli):
    # Run from another directory: `project: ../projects/digits` is found next to the config file.
    short = ["trainer::max_epochs=1", "trainer::limit_train_batches=5", "trainer::enable_progress_bar=false"]
    fit = cli(["fit", DIGITS, *short], cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    run_dir = tmp_path / "runs" / "digits" / "version_0"
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()  # each fit keeps its own best checkpoint

    test = cli(["test", str(run_dir), "trainer::enable_progress_bar=false"], cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    assert "test/metrics/accuracy/epoch" in test.stdout

    for _ in range(2):  # the example's writer replaces its table on a second predict
        predict = cli(["predict", str(run_dir), "trainer::enable_progress_bar=false"], cwd=tmp_path)
        assert predict.returncode == 0, predict.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "runs" / "digits" / "predictions.csv").open()))
    assert len(rows) == TEST_SAMPLES
    assert len({row["identifier"] for row in rows}) == TEST_SAMPLES
    assert all(row["identifier"].startswith("digit-") and 0 <= int(row["pred"]) <= 9 for row in rows)
