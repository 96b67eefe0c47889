"""`BatchLog` on real fits: its columns, a row per batch per mode, and losses that add up to Lightning's epoch loss."""

from __future__ import annotations

import csv
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import accuracy, read_metrics, write_yaml

from lighter import engine
from lighter.callbacks import BatchLog

BATCH = 6  # 16 samples: batches of 6, 6 and 4, so the epoch mean must weight them
SIZES = [6, 6, 4]


def read_log(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def epoch_values(rows: list[dict[str, float]], *names: str) -> list[float]:
    """The values Lightning logged under the first of `names` that it used (metric names differ across versions)."""
    for name in names:
        values = [row[name] for row in rows if name in row]
        if values:
            return values
    raise AssertionError(f"none of {names} in metrics.csv: {sorted({k for row in rows for k in row})}")


def batch_log_config(config: dict, tmp_path: Path, epochs: int = 2, *others: dict) -> Path:
    config["trainer"]["max_epochs"] = epochs
    config["trainer"]["callbacks"] = [{"_target_": "lighter.callbacks.BatchLog", "path": str(tmp_path)}, *others]
    for mode in ("train", "val", "test"):
        config["system"]["dataloaders"][mode]["batch_size"] = BATCH
    config["system"]["metrics"] = {"train": {"accuracy": accuracy()}, "val": "%::train", "test": "%::train"}
    return write_yaml(tmp_path / "config.yaml", config)


def test_a_row_per_batch_per_mode_with_every_column(tmp_path, config):
    path = batch_log_config(config, tmp_path)
    engine.call_stage("fit", [str(path)])
    engine.call_stage("test", [str(path)])

    columns, rows = read_log(tmp_path / "batch_log.csv")
    assert columns == ["epoch", "mode", "batch", "step", "loss", "accuracy", "lr", "grad_norm", "time"]
    keys = [(row["mode"], row["epoch"], row["batch"]) for row in rows]
    expected = [(mode, str(e), str(b)) for e in (0, 1) for mode in ("train", "val") for b in range(3)]
    assert keys == expected + [("test", "0", str(b)) for b in range(3)]  # the test run's trainer starts at epoch 0
    train = [row for row in rows if row["mode"] == "train"]
    assert [int(row["step"]) for row in train] == list(range(6))  # optimizer steps taken before the batch
    assert {row["lr"] for row in train} == {"0.1"}
    assert all(float(row["grad_norm"]) > 0 for row in train)
    assert all(row["lr"] == row["grad_norm"] == "" for row in rows if row["mode"] != "train")
    assert all(row["loss"] == "" for row in rows if row["mode"] == "test")  # test computes metrics, no loss
    assert all(0 <= float(row["accuracy"]) <= 1 for row in rows)
    times = [float(row["time"]) for row in rows if row["mode"] != "test"]
    assert times == sorted(times) and times[0] >= 0


def test_without_a_path_it_writes_into_the_run_directory(tmp_path, config):
    path = batch_log_config(config, tmp_path, 1)
    config["trainer"]["callbacks"] = [{"_target_": "lighter.callbacks.BatchLog"}]
    engine.call_stage("fit", [str(write_yaml(path, config))])

    [record] = tmp_path.rglob("run.yaml")
    _, rows = read_log(record.parent / "batch_log.csv")
    assert len(rows) == 6


WATCH = """
    import os

    import pytorch_lightning as pl

    SEEN = []


    class Watch(pl.Callback):
        \"\"\"Counts the lines of the batch log before each training batch, as someone watching the file would.\"\"\"

        def __init__(self, path):
            self.path = path

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if not os.path.exists(self.path):
                SEEN.append(0)
                return
            with open(self.path) as f:
                SEEN.append(sum(1 for _ in f))
"""


def test_rows_reach_the_file_during_an_epoch_every_flush_seconds(tmp_path, config):
    (tmp_path / "project" / "watch.py").write_text(textwrap.dedent(WATCH))
    path = batch_log_config(config, tmp_path, 1)
    config["trainer"]["callbacks"] = [
        {"_target_": "lighter.callbacks.BatchLog", "path": str(tmp_path), "flush_seconds": 0},
        {"_target_": "project.watch.Watch", "path": str(tmp_path / "batch_log.csv")},
    ]
    engine.call_stage("fit", [str(write_yaml(path, config))])

    assert sys.modules["project.watch"].SEEN == [0, 2, 3]  # header + the rows of the batches before


@pytest.mark.parametrize("value", [pytest.param(-1, id="negative"), pytest.param("often", id="not-a-number")])
def test_flush_seconds_must_be_a_number_of_seconds(value):

    with pytest.raises(ValueError, match=f"BatchLog flush_seconds must be a number of seconds >= 0, got {value!r}"):
        BatchLog(flush_seconds=value)


def test_train_loss_rows_average_to_the_epoch_loss_lightning_logged(tmp_path, config):
    engine.call_stage("fit", [str(batch_log_config(config, tmp_path))])

    _, rows = read_log(tmp_path / "batch_log.csv")
    logged_rows = read_metrics(tmp_path)
    for mode, name in (("train", "train/loss_epoch"), ("val", "val/loss")):
        epoch_loss = epoch_values(logged_rows, f"{mode}/loss/epoch", name)
        for epoch, expected in enumerate(epoch_loss):
            losses = [float(r["loss"]) for r in rows if r["mode"] == mode and r["epoch"] == str(epoch)]
            weighted = sum(v * n for v, n in zip(losses, SIZES, strict=True)) / sum(SIZES)
            assert weighted == pytest.approx(expected, rel=1e-5), (mode, epoch)
    accuracy_epochs = epoch_values(logged_rows, "val/metrics/accuracy/epoch", "val/metrics/accuracy")
    val_accuracy = [float(r["accuracy"]) for r in rows if r["mode"] == "val" and r["epoch"] == "1"]
    assert sum(v * n for v, n in zip(val_accuracy, SIZES, strict=True)) / 16 == pytest.approx(accuracy_epochs[1])


NORMS = """
    import pytorch_lightning as pl
    from pytorch_lightning.utilities import grad_norm

    SEEN = []


    class Norms(pl.Callback):
        \"\"\"Lightning's own total gradient norm, where the optimizer is about to step (before clipping).\"\"\"

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            SEEN.append(float(grad_norm(pl_module, 2)["grad_2.0_norm_total"]))
"""


def test_grad_norm_is_lightnings_total_norm_before_clipping(tmp_path, config):
    (tmp_path / "project" / "norms.py").write_text(textwrap.dedent(NORMS))
    config["trainer"]["gradient_clip_val"] = 1e-4
    path = batch_log_config(config, tmp_path, 1, {"_target_": "project.norms.Norms"})
    engine.call_stage("fit", [str(path)])

    _, rows = read_log(tmp_path / "batch_log.csv")
    logged = [float(row["grad_norm"]) for row in rows if row["mode"] == "train"]
    assert logged == pytest.approx(sys.modules["project.norms"].SEEN, rel=1e-4)  # grad_norm rounds to 4 digits
    assert min(logged) > 1e-3  # far above the clipping value: taken before clipping


def test_accumulated_batches_log_their_own_loss_and_the_norm_where_the_optimizer_stepped(tmp_path, config):
    config["trainer"]["accumulate_grad_batches"] = 2
    engine.call_stage("fit", [str(batch_log_config(config, tmp_path, epochs=1))])

    _, rows = read_log(tmp_path / "batch_log.csv")
    train = [row for row in rows if row["mode"] == "train"]
    assert [row["grad_norm"] != "" for row in train] == [False, True, True]  # steps after batches 1 and 2 (the last)
    epoch_loss = epoch_values(read_metrics(tmp_path), "train/loss/epoch", "train/loss_epoch")[0]
    weighted = sum(float(r["loss"]) * n for r, n in zip(train, SIZES, strict=True)) / 16
    assert weighted == pytest.approx(epoch_loss, rel=1e-5)


def test_a_resumed_fit_keeps_the_rows_before_its_checkpoint_and_the_old_file(tmp_path, config):
    config["trainer"]["enable_checkpointing"] = True
    checkpoint = {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "dirpath": str(tmp_path / "ckpt"),
                  "save_last": True}  # fmt: skip
    path = batch_log_config(config, tmp_path, 1, checkpoint)
    engine.call_stage("fit", [str(path)])
    log_file = tmp_path / "batch_log.csv"
    # An interrupted second epoch: rows past the checkpoint that the resumed fit redoes.
    with log_file.open("a") as f:
        f.write("1,train,0,3,9.9,0.5,0.1,1.0,99.0\n")
    before = log_file.read_bytes()

    resumed = f"args::fit::ckpt_path={tmp_path / 'ckpt' / 'last.ckpt'}"
    own = f"trainer::callbacks::1::dirpath={tmp_path / 'ckpt2'}"  # a new run: `ckpt` is the first run's folder
    engine.call_stage("fit", [str(path)], ["trainer::max_epochs=2", resumed, own])

    _, rows = read_log(log_file)
    keys = [(row["mode"], row["epoch"], row["batch"]) for row in rows]
    assert keys == [(mode, str(e), str(b)) for e in (0, 1) for mode in ("train", "val") for b in range(3)]
    assert "9.9" not in [row["loss"] for row in rows]
    assert (tmp_path / "batch_log.1.csv").read_bytes() == before
    times = [float(row["time"]) for row in rows]
    assert times == sorted(times)  # the resumed fit's clock continues the first one's
