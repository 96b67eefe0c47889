"""`lighter sweep best`: a searched leaf's best trials written as experiment leaves of the same cascade.

The seed's workflow explores in `sweep` mode and confirms in `experiment` mode over seeds. This is the step between:
each chosen trial's config (the searched leaf's config with the trial's values, as `lighter fit` ran it) becomes
`<to>/cfg.yaml` (or `<to>/top_<k>/cfg.yaml` for `--top K`) with `seed: [...]`, so `lighter sweep run ROOT` runs it
over those seeds. The leaf records the trial it came from in a header comment and in `source.yaml` beside it.
Nothing is overwritten: a `cfg.yaml` already there is an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from lighter.config.loader import set_key
from lighter.errors import ConfigError
from lighter.run.files import dump, load, write_atomic
from lighter.sweep.axes import SEED_KEY
from lighter.sweep.cascade import CFG_FILE, SweepMode
from lighter.sweep.expand import searched_trials
from lighter.sweep.pruning import Pruning
from lighter.sweep.study import load_trial_study
from lighter.sweep.trial import Trial

SOURCE_FILE = "source.yaml"
BATCH_LOG_TARGET = "lighter.callbacks.BatchLog"
# What a sweep adds to a trial's run, never part of the setting: the runner adds them again to each experiment trial.
ADDED_CALLBACKS = (f"{Pruning.__module__}.{Pruning.__name__}", BATCH_LOG_TARGET)


@dataclass(frozen=True)
class Best:
    """A searched leaf's complete trial, its rank and value."""

    rank: int
    trial: Trial
    value: float
    params: dict[str, Any]


def best_trials(leaf_dir: Path, top: int = 1) -> tuple[list[Best], dict[str, Any]]:
    """The `top` complete trials of the searched leaf in `leaf_dir`, best first, and the leaf's `study:` record."""
    records = [r for _, r in searched_trials(leaf_dir) if isinstance(r.get("study"), dict)]
    if not records:
        raise ConfigError(
            f"{leaf_dir} holds no trials of a search",
            suggestion="Name a searched leaf's output folder, e.g. runs/sweeps/sweep/digits/cnn/search.",
        )
    study_record = records[0]["study"]
    study = load_trial_study(study_record["storage"], study_record["name"])
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(f"the study of {leaf_dir} has no complete trial yet", suggestion="Run the search first.")
    ranked = sorted(complete, key=lambda t: t.value, reverse=study_record.get("mode") == "max")
    return [
        Best(i + 1, Trial(leaf_dir / f"trial_{t.number:03d}"), float(t.value), dict(t.params))
        for i, t in enumerate(ranked[:top])
    ], study_record


def experiment_config(trial: Trial, seeds: list[int]) -> dict[str, Any]:
    """The config the trial ran, without what the sweep added, with `seed` the list of seeds."""
    config = load(trial.config_path)
    if not isinstance(config, dict):
        raise ConfigError(f"{trial.config_path} is not a config", suggestion="Name a searched leaf's output folder.")
    callbacks = (config.get("trainer") or {}).get("callbacks")
    if isinstance(callbacks, list):
        kept = [c for c in callbacks if not (isinstance(c, dict) and c.get("_target_") in ADDED_CALLBACKS)]
        set_key(config, "trainer::callbacks", kept)
    config[SEED_KEY] = seeds
    return config


def _experiment_leaf(to: Path) -> None:
    """`to` sits in an `experiment` folder of a cascade, below its mode folder."""
    if SweepMode.EXPERIMENT.value not in to.parts[:-1]:
        raise ConfigError(
            f"--to {to} is not inside an experiment folder of a cascade",
            suggestion="Write e.g. --to configs/cascade/experiment/digits/cnn/best",
        )


def write_best(leaf_dir: Path, to: Path, *, top: int = 1, seeds: list[int] | None = None) -> list[Path]:
    """Write the best (or the top `top`) trials as experiment leaves under `to`; the `cfg.yaml` files written."""
    to = Path(to).absolute()
    _experiment_leaf(to)
    chosen, study = best_trials(Path(leaf_dir).resolve(), top)
    folders = [to] if top == 1 else [to / f"top_{b.rank}" for b in chosen]
    taken = [f / CFG_FILE for f in folders if (f / CFG_FILE).exists()]
    if taken:
        raise ConfigError(
            f"{taken[0]} exists; `lighter sweep best` overwrites nothing",
            suggestion="Choose another --to folder, or move that leaf away first.",
        )
    written = []
    for best, folder in zip(chosen, folders, strict=True):
        trial_seed = (load(best.trial.config_path) or {}).get(SEED_KEY, 0)
        config = experiment_config(best.trial, seeds if seeds else [trial_seed])
        header = (
            f"# Written by `lighter sweep best` from {best.trial.dir} (rank {best.rank}:"
            f" {study['monitor']} = {best.value:.6g}, {study['mode']}).\n"
        )
        source = {
            "trial": str(best.trial.dir),
            "study": {k: study[k] for k in ("storage", "name", "monitor", "mode")},
            "number": int(best.trial.record().get("study", {}).get("number", -1)),
            "rank": best.rank,
            "value": best.value,
            "params": best.trial.record().get("axes", best.params),
            "written": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / SOURCE_FILE, dump(source))
        write_atomic(folder / CFG_FILE, header + dump(config))
        written.append(folder / CFG_FILE)
    return written
