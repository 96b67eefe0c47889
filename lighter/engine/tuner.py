"""`lighter lr_find` and `lighter scale_batch_size`: Lightning's Tuner on a fit config, which stays as written.

Each builds what `lighter fit` builds, runs the Tuner method through the stage runner (`engine.stage.execute`: the run's
record, error attribution and summary, as for a fit) with the arguments under `args::lr_find` or
`args::scale_batch_size` (as upstream Lighter took them), and prints the value found and the override that uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lighter.config.loader import ConfigArgs, Configs, lookup, split_config_args
from lighter.engine.stage import command_line, execute, instantiate, prepare
from lighter.names import REF, SEP, Stage
from lighter.tracking.profiles import chosen

LR_KEY = f"system{SEP}optimizer{SEP}lr"
BATCH_SIZE_KEY = f"system{SEP}dataloaders{SEP}train{SEP}batch_size"
PLOT_FILE = "lr_find.png"


def _written_at(config: dict[str, Any], key: str) -> str:
    """The key to override: where `key`'s value is written, following `@` references (`@vars::lr` -> vars::lr)."""
    for _ in range(10):
        value = lookup(config, key, None)
        if not (isinstance(value, str) and value.startswith(REF)):
            break
        key = value[len(REF) :]
    return key


def _tune(method: str, configs: Configs, overrides: Any, run_dir: str | None, profile: str | None) -> tuple:
    """Build what `lighter fit` builds, recorded as a run of `method` with `args::<method>` as the arguments, and run
    the Tuner method through the stage runner: the experiment, the split configs and what the method returned."""
    configs = split_config_args(configs)
    command = command_line(method, configs.typed, overrides, profile=chosen(profile))
    experiment = instantiate(prepare(Stage.FIT, configs, overrides, profile=profile, command=command), tuner=method)
    return experiment, configs, execute(experiment, run_dir=run_dir)


def _fit_command(configs: ConfigArgs, overrides: Any, profile: str | None, override: str) -> str:
    """The `lighter fit` command that uses what the Tuner found: the one typed, with `override` last."""
    return command_line(Stage.FIT.value, configs.typed, overrides, profile=chosen(profile)) + f" {override}"


def lr_find(
    configs: Configs, overrides: Any = None, *, run_dir: str | None = None, profile: str | None = None
) -> float | None:
    """Run Lightning's learning-rate range test; print the suggestion, the fit command that uses it, and the plot."""
    experiment, configs, finder = _tune("lr_find", configs, overrides, run_dir, profile)
    directory = experiment.recorder.run_dir
    suggestion = finder.suggestion() if finder is not None else None
    if not experiment.trainer.is_global_zero:
        return suggestion
    if suggestion is None:
        print("lighter lr_find: no suggestion: the loss did not fall over the range tried.")
        print("  Try a wider range (args::lr_find::min_lr, ::max_lr) or more steps (args::lr_find::num_training).")
        return None
    override = f"{_written_at(experiment.config, LR_KEY)}={suggestion:.3g}"
    print(f"lighter lr_find: suggested learning rate {suggestion:.3g}")
    print(f"  use it: {_fit_command(configs, overrides, profile, override)}")
    if directory is not None:
        print(f"  plot:   {_save_plot(finder, directory)}")
    return suggestion


def _save_plot(finder: Any, run_dir: Path) -> str:
    try:
        import matplotlib  # lazy: optional (lighter[tuner]), for the plot alone

        matplotlib.use("Agg")  # no display on a cluster node
    except ImportError:
        return "not drawn: matplotlib is not installed (pip install 'lighter[tuner]')"
    path = run_dir / PLOT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = finder.plot(suggest=True)
    figure.savefig(path, dpi=100)
    return str(path)


def scale_batch_size(
    configs: Configs, overrides: Any = None, *, run_dir: str | None = None, profile: str | None = None
) -> int | None:
    """Double the train batch size until memory runs out (Lightning's `power` mode); print the largest that fit."""
    experiment, configs, size = _tune("scale_batch_size", configs, overrides, run_dir, profile)
    if not experiment.trainer.is_global_zero or size is None:
        return size
    override = f"{_written_at(experiment.config, BATCH_SIZE_KEY)}={size}"
    dataset = getattr(experiment.system.dataloaders.get("train"), "dataset", None)
    whole = dataset is not None and hasattr(dataset, "__len__") and size >= len(dataset)
    note = " (the whole training set: memory never ran out)" if whole else ""
    print(f"lighter scale_batch_size: the largest batch size that fits is {size}{note}")
    print(f"  use it: {_fit_command(configs, overrides, profile, override)}")
    return size
