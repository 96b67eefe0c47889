"""Each tracker's logger block for a test config, and a reader that uses the tracker's own API to say what arrived.

A reader returns a `Tracked`: every metric name logged, the hyperparameters (name -> value), and the names of the
files attached to the run. Nothing here goes to a network: W&B and Comet run offline, MLflow on a local store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TIMEOUT = 120


@dataclass
class Tracked:
    metrics: set[str]
    params: dict[str, Any]
    files: set[str] = field(default_factory=set)


def offline_env(root: Path) -> dict[str, str]:
    """Environment for runs with trackers: offline, quiet, every tracker's own folders under `root`."""
    return {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(root / "wandb-dir"),
        "WANDB_CACHE_DIR": str(root / "wandb-cache"),
        "WANDB_DATA_DIR": str(root / "wandb-data"),
        "WANDB_CONFIG_DIR": str(root / "wandb-config"),
        "WANDB_DISABLE_GIT": "true",
        "COMET_DISABLE_AUTO_LOGGING": "1",
        "COMET_OFFLINE_DIRECTORY": str(root / "comet"),
        "COMET_CONFIG": str(root / "comet.config"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow-default.db'}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


# --- logger blocks -------------------------------------------------------------------------------------------------


def csv_logger(root: Path) -> dict[str, Any]:
    return {"_target_": "pytorch_lightning.loggers.CSVLogger", "save_dir": str(root / "csv"), "name": "run"}


def tensorboard_logger(root: Path) -> dict[str, Any]:
    return {"_target_": "pytorch_lightning.loggers.TensorBoardLogger", "save_dir": str(root / "tb"), "name": "run"}


def new_mlflow_store(path: Path) -> None:
    """An empty MLflow SQLite store at `path`, its tables made by MLflow itself (its schema migrations, 5-10 s)."""
    from mlflow.tracking import MlflowClient

    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    MlflowClient(tracking_uri=f"sqlite:///{partial}").search_experiments()
    os.replace(partial, path)


def mlflow_logger(root: Path) -> dict[str, Any]:
    """A SQLite store: MLflow 3.x refuses its file store unless MLFLOW_ALLOW_FILE_STORE=true."""
    return {
        "_target_": "pytorch_lightning.loggers.MLFlowLogger",
        "experiment_name": "lighter-test",
        "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
        "artifact_location": str(root / "mlartifacts"),
    }


def wandb_logger(root: Path) -> dict[str, Any]:
    return {
        "_target_": "pytorch_lightning.loggers.WandbLogger",
        "project": "lighter-test",
        "offline": True,
        "save_dir": str(root / "wandb"),
    }


def comet_logger(root: Path) -> dict[str, Any]:
    return {
        "_target_": "lighter.tracking.CometLogger",
        "project": "lighter-test",
        "online": False,
        "offline_directory": str(root / "comet"),
    }


# --- readers -------------------------------------------------------------------------------------------------------


def read_csv(root: Path) -> list[Tracked]:
    runs = []
    for folder in sorted((root / "csv" / "run").glob("version_*")):
        header = (folder / "metrics.csv").read_text().splitlines()[0].split(",")
        runs.append(Tracked(set(header), yaml.safe_load((folder / "hparams.yaml").read_text()) or {}))
    return runs


def read_tensorboard(root: Path) -> list[Tracked]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    runs = []
    for folder in sorted((root / "tb" / "run").glob("version_*")):
        events = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
        events.Reload()
        params: dict[str, Any] = {}
        for content in events.PluginTagToContent("hparams").values():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            for name, value in data.session_start_info.hparams.items():
                params[name] = getattr(value, value.WhichOneof("kind"))
        files = {tag.split("/")[0] for tag in events.Tags()["tensors"]}  # text summaries: `NAME/text_summary`
        runs.append(Tracked(set(events.Tags()["scalars"]), params, files))
    return runs


def read_mlflow(root: Path) -> list[Tracked]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lighter-test")
    runs = []
    for run in reversed(client.search_runs([experiment.experiment_id])):  # oldest first
        metrics = set(run.data.metrics)
        files = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
        runs.append(Tracked(metrics, dict(run.data.params), files))
    return runs


def read_wandb(root: Path) -> list[Tracked]:
    """W&B's own reader of its transaction log: `wandb leet inspect --json run-ID.wandb`, one record per line."""
    runs = []
    for log in sorted((root / "wandb" / "wandb").glob("offline-run-*/run-*.wandb")):
        done = subprocess.run(
            [str(Path(sys.executable).parent / "wandb"), "leet", "inspect", "--json", str(log)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
        metrics: set[str] = set()
        params: dict[str, Any] = {}
        files: set[str] = set()
        for line in done.stdout.splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            kind = record.get("type")
            if kind == "history":
                metrics.update(record["history"]["item"])
            elif kind == "config":
                params.update(record["config"].get("update", {}))
            elif kind == "artifact":
                files.update(entry["path"] for entry in record["artifact"]["manifest"]["contents"])
        runs.append(Tracked(metrics, params, files))
    return runs


def read_comet(root: Path) -> list[Tracked]:
    """The offline archive Comet writes at exit: messages.json holds metrics, parameters and uploaded files."""
    runs = []
    archives = sorted((root / "comet").glob("*.zip"), key=lambda p: p.stat().st_mtime)
    for archive in archives:
        with zipfile.ZipFile(archive) as zf:
            messages = [json.loads(line) for line in zf.read("messages.json").decode().splitlines() if line]
        metrics = {m["payload"]["metric"]["metricName"] for m in messages if m["type"] == "metric_msg"}
        params = {
            m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
            for m in messages
            if m["type"] == "parameter_msg" and m["payload"]["param"].get("source") != "auto-logged"
        }
        files = {
            Path(m["payload"]["additional_params"]["fileName"]).name
            for m in messages
            if m["type"] == "file_upload" and m["payload"].get("upload_type") == "asset"
        }
        runs.append(Tracked(metrics, params, files))
    return runs


BACKENDS: dict[str, tuple[Callable[[Path], dict[str, Any]], Callable[[Path], list[Tracked]]]] = {
    "csv": (csv_logger, read_csv),
    "tensorboard": (tensorboard_logger, read_tensorboard),
    "mlflow": (mlflow_logger, read_mlflow),
    "wandb": (wandb_logger, read_wandb),
    "comet": (comet_logger, read_comet),
}
