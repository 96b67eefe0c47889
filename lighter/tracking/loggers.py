"""What lighter knows about each tracker: the package and extra it needs, where its run is, how it keeps files.

Loggers are matched by class name, so Lightning's (`pytorch_lightning.loggers.X`, `lightning.pytorch.loggers.X`)
and lighter's `lighter.tracking.CometLogger` are all found. Nothing here imports a tracker.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighter.config.loader import LoadedConfig
from lighter.errors import ConfigError
from lighter.names import CONFIG_FILE, SEP, TARGET

LOGGER_KEY = "trainer::logger"
ALL_TRACKERS_EXTRA = "tracking"


@dataclass(frozen=True)
class Backend:
    modules: tuple[str, ...]  # any one of them will do
    extra: str


BACKENDS: dict[str, Backend] = {
    "TensorBoardLogger": Backend(("tensorboard", "tensorboardX"), "tensorboard"),
    "MLFlowLogger": Backend(("mlflow",), "mlflow"),
    "WandbLogger": Backend(("wandb",), "wandb"),
    "CometLogger": Backend(("comet_ml",), "comet-ml"),
}


def configured(pruned: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(key path, entry, class name) of every logger in `trainer::logger`, one or a list."""
    trainer = pruned.get("trainer")
    value = trainer.get("logger") if isinstance(trainer, dict) else None
    entries = [(LOGGER_KEY, value)] if isinstance(value, dict) else []
    if isinstance(value, list):
        entries = [(f"{LOGGER_KEY}{SEP}{i}", item) for i, item in enumerate(value)]
    for key, entry in entries:
        target = entry.get(TARGET) if isinstance(entry, dict) else None
        if isinstance(target, str):
            yield key, entry, target.rsplit(".", 1)[-1]


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: imports of it are blocked
    return importlib.util.find_spec(module) is not None


def check_installed(pruned: dict[str, Any], loaded: LoadedConfig) -> None:
    """A logger whose tracker is not installed is a config error that names the extra to install."""
    for key, _, name in configured(pruned):
        backend = BACKENDS.get(name)
        if backend is None or any(_installed(m) for m in backend.modules):
            continue
        raise ConfigError(
            f"{name} needs the '{backend.modules[0]}' package, which is not installed",
            key=f"{key}{SEP}{TARGET}",
            location=loaded.where(f"{key}{SEP}{TARGET}"),
            suggestion=(
                f"Install lighter's '{backend.extra}' extra: pip install 'lighter[{backend.extra}]' "
                f"(every tracker: 'lighter[{ALL_TRACKERS_EXTRA}]'), or pip install {backend.modules[0]}."
            ),
        )


def comet_online_false(pruned: dict[str, Any]) -> list[str]:
    """Keys of Lightning's own CometLogger with `online: false`, which (pytorch-lightning 2.6) logs nothing."""
    return [
        f"{key}{SEP}online"
        for key, entry, name in configured(pruned)
        if name == "CometLogger" and not entry[TARGET].startswith("lighter.") and entry.get("online") is False
    ]


# What run.yaml records of each tracker's run: its id, its URL where it has one, where its files are.
def _mlflow(logger: Any) -> dict[str, Any]:
    uri = logger._tracking_uri or ""
    record = {"id": logger.run_id, "experiment_id": logger.experiment_id, "tracking_uri": uri}
    if uri.startswith(("http://", "https://")):
        record["url"] = f"{uri.rstrip('/')}/#/experiments/{logger.experiment_id}/runs/{logger.run_id}"
    return record


def _wandb(logger: Any) -> dict[str, Any]:
    run = logger.experiment
    return {"id": run.id, "url": getattr(run, "url", None), "dir": str(Path(run.dir).parent)}


def _comet(logger: Any) -> dict[str, Any]:
    experiment = logger.experiment
    offline_dir = getattr(experiment, "offline_directory", None)
    if offline_dir:  # an offline experiment's "url" is a placeholder until `comet upload`
        return {"id": experiment.get_key(), "dir": str(Path(offline_dir).resolve())}
    return {"id": experiment.get_key(), "url": experiment.url}


def _log_dir(logger: Any) -> dict[str, Any]:
    return {"dir": str(Path(logger.log_dir).resolve())} if getattr(logger, "log_dir", None) else {}


RECORDS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "MLFlowLogger": _mlflow,
    "WandbLogger": _wandb,
    "CometLogger": _comet,
    "TensorBoardLogger": _log_dir,
    "CSVLogger": _log_dir,
}


def record(logger: Any) -> dict[str, Any]:
    """What run.yaml says about one logger's run; a tracker that cannot say is recorded by class alone."""
    name = type(logger).__name__
    found = {"logger": name}
    describe = next((fn for cls in type(logger).__mro__ if (fn := RECORDS.get(cls.__name__))), None)
    if describe is not None:
        found.update({k: v for k, v in describe(logger).items() if v not in (None, "")})
    return found


# How config.yaml goes to each tracker that keeps files with a run (TensorBoard shows it as text instead).
def _attach_mlflow(logger: Any, path: Path) -> None:
    logger.experiment.log_artifact(logger.run_id, str(path))


def _attach_wandb(logger: Any, path: Path) -> None:
    import wandb  # lazy: optional (lighter[wandb]), and only a W&B run gets here

    artifact = wandb.Artifact(name=f"config-{logger.experiment.id}", type="config")
    artifact.add_file(str(path), name=path.name)
    logger.experiment.log_artifact(artifact)


def _attach_comet(logger: Any, path: Path) -> None:
    logger.experiment.log_asset(str(path), file_name=path.name)


def _attach_tensorboard(logger: Any, path: Path) -> None:
    text = "".join(f"    {line}" for line in path.read_text().splitlines(keepends=True))  # markdown code block
    # At the step its writer starts from: 0, or where a resumed run continues (`lighter.run.logs`), so each config
    # a run trained with is shown once, at the step it took over.
    logger.experiment.add_text(CONFIG_FILE, text, global_step=logger._kwargs.get("purge_step") or 0)


ATTACH: dict[str, Callable[[Any, Path], None]] = {
    "MLFlowLogger": _attach_mlflow,
    "WandbLogger": _attach_wandb,
    "CometLogger": _attach_comet,
    "TensorBoardLogger": _attach_tensorboard,
}


def attach(logger: Any, path: Path) -> None:
    attach_to = next((fn for cls in type(logger).__mro__ if (fn := ATTACH.get(cls.__name__))), None)
    if attach_to is not None:
        attach_to(logger, path)
