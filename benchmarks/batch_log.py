"""What `lighter.callbacks.BatchLog` costs per training step: the digits MLP fit with and without it.

The two fit in turn in this process (rotating, so a busy spell of the shared machine slows both alike); the
figure is the difference of their median steady epochs, per step, in wall and in CPU time (the process's own,
which other processes on a shared machine disturb least). The callback's own time is also taken directly, by timing
each of its hooks (CPU time), which is steadier than a difference of two noisy epochs.

    python benchmarks/batch_log.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import torch
from cases import CASES, lighter_overrides
from common import interleaved, median, save, table

from lighter.callbacks import BatchLog

CASE = "digits-mlp"
EPOCHS = 3  # epoch 0 warms up; 1 and 2 are steady
WAYS = ("without BatchLog", "with BatchLog")
HOOKS = ("on_train_batch_start", "on_before_optimizer_step", "on_train_batch_end", "on_train_epoch_end")


class _TimedBatchLog(BatchLog):
    """BatchLog with a stopwatch around each hook: its own time, whatever the rest of the step does."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seconds = dict.fromkeys(HOOKS, 0.0)
        self.steady_from = 0  # the global step where epoch 1 started: one-off first calls are left out
        for name in HOOKS:
            setattr(self, name, self._timed(name, getattr(self, name)))

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            self.seconds = dict.fromkeys(HOOKS, 0.0)
            self.steady_from = trainer.global_step

    def _timed(self, name, hook):
        @functools.wraps(hook)
        def timed(*args, **kwargs):
            start = time.process_time()
            hook(*args, **kwargs)
            self.seconds[name] += time.process_time() - start

        return timed


def fit(way: str, workdir: Path, timed: bool = False) -> tuple[dict, int, BatchLog | None]:
    """One fit: its timeline (wall and CPU seconds per epoch), steps per epoch, and the callback (if any)."""
    from lighter.engine.stage import instantiate, prepare

    case = CASES[CASE]
    timeline = workdir / "timeline.json"
    experiment = instantiate(prepare("fit", [str(case.config)], lighter_overrides(case, EPOCHS, timeline, workdir)))
    callback = None
    if way == "with BatchLog":
        callback = (_TimedBatchLog if timed else BatchLog)(path=workdir)
        experiment.trainer.callbacks.append(callback)
    experiment.trainer.fit(experiment.system)
    steps = experiment.trainer.global_step // EPOCHS
    return json.loads(timeline.read_text()), steps, callback


def run(quick: bool = False, rounds: int | None = None) -> dict:
    torch.set_num_threads(1)  # as the other benchmarks' processes run (OMP_NUM_THREADS=1)
    rounds = rounds or (3 if quick else 20)
    epochs: dict[str, dict[str, list[float]]] = {way: {"wall": [], "cpu": []} for way in WAYS}
    steps = 0
    for _, way in interleaved(WAYS, rounds):
        with tempfile.TemporaryDirectory(prefix="bench-batchlog-") as tmp:
            marks, steps, _ = fit(way, Path(tmp))
        epochs[way]["wall"].extend(marks["epoch_seconds"][1:])
        epochs[way]["cpu"].extend(marks["epoch_cpu_seconds"][1:])
    per_step = {way: {k: median(v) / steps * 1e6 for k, v in kinds.items()} for way, kinds in epochs.items()}
    base = per_step["without BatchLog"]
    delta = {k: per_step["with BatchLog"][k] - base[k] for k in base}

    with tempfile.TemporaryDirectory(prefix="bench-batchlog-") as tmp:
        _, steps, callback = fit("with BatchLog", Path(tmp), timed=True)
        rows = sum(1 for _ in (Path(tmp) / "batch_log.csv").open()) - 1
    assert isinstance(callback, _TimedBatchLog)
    total_steps = steps * EPOCHS - callback.steady_from
    hooks = {name: seconds / total_steps * 1e6 for name, seconds in callback.seconds.items()}
    own = sum(hooks.values())
    print(
        f"digits MLP, {steps} steps an epoch, median of {rounds} rounds x {EPOCHS - 1} steady epochs, in turn:\n"
        + table(["way", "wall us/step", "CPU us/step"], [[w, v["wall"], v["cpu"]] for w, v in per_step.items()])
        + f"\nBatchLog adds {delta['wall']:.1f} us/step wall ({delta['wall'] / base['wall'] * 100:.1f}%), "
        + f"{delta['cpu']:.1f} us/step CPU ({delta['cpu'] / base['cpu'] * 100:.1f}%)\n"
        + f"\nits hooks timed one by one (one fit, {rows} rows written), CPU us per steady training step:\n"
        + table(["hook", "CPU us/step"], [[name, value] for name, value in hooks.items()])
        + f"\nown time {own:.1f} us/step ({own / base['cpu'] * 100:.1f}% of a step's CPU time)\n",
        flush=True,
    )
    return {"steps_per_epoch": steps, "rounds": rounds, "us_per_step": per_step, "delta_us": delta, "hooks_us": hooks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    save(run(args.quick, args.rounds), args.json)


if __name__ == "__main__":
    main()
