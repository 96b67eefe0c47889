"""Trackers that keep their own stores (W&B offline, MLflow on sqlite) get no lighter files: each run still gets
its own lighter run directory, twice in a row, and nothing lands in the tracker roots or the current directory.

W&B ends its run when the process exits, so its fits run in processes of their own; MLflow's in this one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import classifier_config, run_cli, write_yaml

LIGHTER_FILES = {"run.yaml", "metrics.csv"}  # config.yaml goes to each tracker's run on purpose (lighter.tracking)


def wandb_logger(root: Path) -> dict:
    return {
        "_target_": "pytorch_lightning.loggers.WandbLogger",
        "offline": True,
        "save_dir": str(root),
        "project": "lighter-test",
    }


def mlflow_logger(root: Path) -> dict:
    return {
        "_target_": "pytorch_lightning.loggers.MLFlowLogger",
        "experiment_name": "lighter-test",
        "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
        # lighter.tracking attaches config.yaml to the MLflow run; without this, MLflow keeps artifacts in ./mlruns
        "artifact_location": str(root / "artifacts"),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make_logger", "id_key"),
    [pytest.param(wandb_logger, "id", id="wandb-offline"), pytest.param(mlflow_logger, "id", id="mlflow-sqlite")],
)
def test_two_tracked_runs_get_two_lighter_directories_and_leave_the_tracker_root_alone(
    tmp_path, monkeypatch, make_logger, id_key, cli, mlflow_template
):
    pytest.importorskip("wandb" if make_logger is wandb_logger else "mlflow")
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracker_root, out, cwd = tmp_path / "tracker", tmp_path / "out", tmp_path / "cwd"
    for folder in (tracker_root, cwd):
        folder.mkdir()
    if make_logger is mlflow_logger:
        shutil.copy(mlflow_template, tracker_root / "mlflow.db")  # a new store, its tables made once per suite run
    config = classifier_config(tmp_path / "cfg")
    config["trainer"].update(
        logger=make_logger(tracker_root),
        default_root_dir=str(out),
        enable_checkpointing=True,
        callbacks=[{"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True}],
    )
    path = write_yaml(tmp_path / "cfg" / "config.yaml", config)
    for _ in range(2):
        done = run_cli(["fit", str(path)], cwd) if make_logger is wandb_logger else cli(["fit", str(path)], cwd=cwd)
        assert done.returncode == 0, done.stderr[-3000:]

    runs = sorted((out / "runs" / "fit").iterdir())
    assert len(runs) == 2
    ids = []
    for run_dir in runs:
        record = yaml.safe_load((run_dir / "run.yaml").read_text())
        assert record["status"] == "finished"
        [tracker] = record["trackers"]
        ids.append(tracker[id_key])
        assert (run_dir / "config.yaml").is_file()
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert ids[0] != ids[1]  # two tracker runs, each recorded in its own lighter run
    assert not [p for p in tracker_root.rglob("*") if p.name in LIGHTER_FILES or p.suffix == ".ckpt"]
    assert list(cwd.iterdir()) == []
