"""The few lines printed when a stage ends: where the run went, what it reached, and what to run next.

Rank 0 prints them to stdout after Lightning's own output. A failed run prints none: its error says enough.

    Run directory:   runs/digits/version_3
    Best checkpoint: runs/digits/checkpoints/best.ckpt (val/accuracy 0.9815)
    Last checkpoint: runs/digits/version_3/checkpoints/last.ckpt
    Final metrics:   train/loss 0.0716  train/accuracy 0.976  val/loss 0.0876  val/accuracy 0.9815
    Next:            lighter test runs/digits/version_3
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from lighter.names import STAGE_MODES, Mode, Stage, Status
from lighter.run.lifecycle import Outcome
from lighter.utils.metric_names import format_metrics, is_headline, short_name, shorten

# What to run after a finished stage, if the config has the data for it.
NEXT_STAGES = {Stage.FIT: (Stage.TEST, Stage.PREDICT), Stage.VALIDATE: (), Stage.TEST: (), Stage.PREDICT: ()}


def shown_path(path: str | os.PathLike) -> str:
    """Relative to the current directory when inside it (shorter to copy), else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _checkpoints(trainer: Any) -> list[tuple[str, str]]:
    from pytorch_lightning.callbacks import ModelCheckpoint  # lazy: Lightning, not for show/status

    rows = []
    for callback in trainer.checkpoint_callbacks:
        if not isinstance(callback, ModelCheckpoint):
            continue
        best, last = callback.best_model_path, callback.last_model_path
        if best and Path(best).is_file():
            score = callback.best_model_score
            value = (
                f" ({short_name(callback.monitor)} {float(score):.4g})"
                if callback.monitor and score is not None
                else ""
            )
            rows.append(("Best checkpoint:" if callback.monitor else "Checkpoint:", shown_path(best) + value))
        if last and last != best and Path(last).is_file():
            rows.append(("Last checkpoint:", shown_path(last)))
    return rows


def _final_metrics(trainer: Any, stage: Stage) -> str:
    modes = {mode.value for mode in STAGE_MODES[stage]}
    metrics = shorten(trainer.callback_metrics)
    return format_metrics({k: v for k, v in metrics.items() if is_headline(k) and k.split("/", 1)[0] in modes})


def _writers(trainer: Any) -> list[tuple[str, str]]:
    from lighter.callbacks.writer import SampleWriter  # lazy: imports Lightning; `lighter show` imports this module

    return [
        ("Predictions:", f"{shown_path(c.path)} ({c.written} items, {type(c).__name__})")
        for c in trainer.callbacks
        if isinstance(c, SampleWriter)
    ]


def _next(experiment: Any, run_dir: Path | None, status: str) -> list[str]:
    if run_dir is None:
        return []
    where = shlex.quote(shown_path(run_dir))
    if status == Status.INTERRUPTED and experiment.stage is Stage.FIT:
        return [f"lighter resume {where}"]
    if status != Status.FINISHED:
        return []
    loaders = experiment.config.get("system", {}).get("dataloaders") or {}
    modes = {Stage.TEST: Mode.TEST.value, Stage.PREDICT: Mode.PREDICT.value}
    return [f"lighter {s.value} {where}" for s in NEXT_STAGES[experiment.stage] if modes[s] in loaders]


def summary(experiment: Any, run_dir: Path | None, status: str, *, tuned: bool = False) -> str:
    """The summary's lines for a stage that ended with `status` (finished or interrupted). A `tuned` run (lr_find,
    scale_batch_size) shows its directory only: the tuner prints what it found and the fit command that uses it."""
    trainer = experiment.trainer
    rows: list[tuple[str, str]] = []
    if run_dir is not None:
        rows.append(("Run directory:", shown_path(run_dir) + ("" if status == Status.FINISHED else f" ({status})")))
    if tuned:
        return "\n".join(f"{label}  {text}" for label, text in rows)
    if experiment.stage is Stage.FIT:
        rows += _checkpoints(trainer)
    metrics = _final_metrics(trainer, experiment.stage)
    if metrics:
        rows.append(("Final metrics:" if status == Status.FINISHED else "Last metrics:", metrics))
    if experiment.stage is Stage.PREDICT:
        rows += _writers(trainer)
    for i, command in enumerate(_next(experiment, run_dir, status)):
        rows.append(("Next:" if i == 0 else "", command))
    width = max((len(label) for label, _ in rows), default=0)
    return "\n".join(f"{label.ljust(width)}  {text}" for label, text in rows)


def print_summary(experiment: Any, outcome: Outcome | None, *, tuned: bool = False) -> None:
    """Print the summary on rank 0 if the run finished or was interrupted, as `recorded` handed on its `outcome`
    (None: the stage stopped before its directory was claimed)."""
    trainer = experiment.trainer
    if trainer is None or not trainer.is_global_zero:
        return
    run_dir = None if outcome is None else outcome.directory
    status = Status.FINISHED.value
    if run_dir is not None and outcome.status is not None:
        status = outcome.status.value
    if status not in (Status.FINISHED, Status.INTERRUPTED):
        return
    text = summary(experiment, run_dir, status, tuned=tuned)
    if text:
        print("\n" + text, flush=True)
