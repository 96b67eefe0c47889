"""Run a stage: read the config, build what the stage uses, call the Trainer's method of the same name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lighter.config import build
from lighter.config.loader import LoadedConfig, load_config
from lighter.keys import Stage


@dataclass
class Experiment:
    """Everything a stage runs with: the config as read, the config that will run, and the built objects."""

    stage: Stage
    loaded: LoadedConfig
    config: dict[str, Any]  # merged, overridden, macros expanded, `project` absolute: runnable anywhere
    trainer: Any = None
    system: Any = None
    args: dict[str, Any] | None = None


def prepare(stage: Stage | str, configs: list[str] | str, overrides: list[str] | dict[str, Any] | None = None):
    """Read, merge, override and expand a config for `stage`, importing its project; build nothing yet."""
    stage = Stage(stage)
    loaded = load_config(configs, overrides)
    config = build.expand_macros(build.with_defaults(loaded.data))
    if config.get("project") is not None:
        config["project"] = str(build.import_project(loaded, config["project"]))
    return Experiment(stage=stage, loaded=loaded, config=config)


def instantiate(experiment: Experiment) -> Experiment:
    """Seed, then build the trainer, the system and the stage's Trainer-method arguments."""
    import pytorch_lightning as pl

    stage = experiment.stage
    pruned = build.prune(experiment.config, stage)
    if pruned.get("seed") is not None:
        pl.seed_everything(pruned["seed"], workers=True)
    parser = build.make_parser(pruned)
    experiment.trainer = parser.get_parsed_content("trainer")
    experiment.system = parser.get_parsed_content("system")
    args_key = f"args::{stage.value}"
    args = parser.get_parsed_content(args_key) if build.key_exists(pruned, args_key) else {}
    experiment.args = dict(args or {})
    if stage is Stage.PREDICT:
        # Writers save predictions as they come; keeping them all in memory too would grow without bound.
        experiment.args.setdefault("return_predictions", False)
    return experiment


def run(stage: Stage | str, configs: list[str] | str, overrides: list[str] | dict[str, Any] | None = None) -> Any:
    """`lighter <stage> CONFIG... [overrides]` as a function: returns what the Trainer method returns."""
    experiment = instantiate(prepare(stage, configs, overrides))
    method = getattr(experiment.trainer, experiment.stage.value)
    return method(experiment.system, **experiment.args)
