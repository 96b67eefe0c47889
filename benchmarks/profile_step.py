"""Where a training step's time goes: cProfile over `fit` for lighter.System and the hand-written module.

Both train the digits MLP in this process under the profiler. The report gives each module's
`training_step` per step (inclusive), and the functions in lighter's own files by their own time per step.

    python benchmarks/profile_step.py [--epochs N] [--top N]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import pstats
import tempfile
import warnings
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from cases import CASES, lighter_overrides
from common import REPO, interleaved, median, save, table
from torch.utils.data import DataLoader

CASE = "digits-mlp"
LIGHTER_DIR = str(REPO / "lighter")


def _fit_lighter(epochs: int, workdir: Path, record: bool = True) -> tuple[pl.Trainer, pl.LightningModule]:
    from lighter.engine.stage import instantiate, prepare

    case = CASES[CASE]
    overrides = lighter_overrides(case, epochs, workdir / "lighter.json", workdir)
    experiment = instantiate(prepare("fit", [str(case.config)], overrides), record=record)
    return experiment.trainer, experiment.system


def _fit_handwritten(epochs: int, workdir: Path, names: bool = False) -> tuple[pl.Trainer, pl.LightningModule]:
    from handwritten import Classifier, LighterNames
    from workload import data, models
    from workload.timing import TimingCallback

    case = CASES[CASE]
    kind = LighterNames if names else Classifier
    pl.seed_everything(case.seed, workers=True)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=pl.loggers.CSVLogger(workdir, name="handwritten"),
        callbacks=[TimingCallback(str(workdir / "handwritten.json"), loss_key=kind.LOSS_KEY)],
    )
    module = kind(getattr(models, case.model)(), case.lr, case.num_classes)
    module.train_dataloader = lambda: DataLoader(getattr(data, case.data)(), batch_size=case.batch_size, shuffle=True)
    return trainer, module


# The ways compared in this process; the run recorder is lighter's, so its cost shows on its own.
BUILDS = {
    "lighter": _fit_lighter,
    "lighter, no RunRecorder": partial(_fit_lighter, record=False),
    "handwritten": _fit_handwritten,
    "handwritten, lighter's names": partial(_fit_handwritten, names=True),
}
TIMELINES = {way: "handwritten.json" if way.startswith("handwritten") else "lighter.json" for way in BUILDS}


class _SteadyProfile(pl.Callback):
    """cProfile from the second epoch's start to the end of training: steady steps, no one-off setup."""

    def __init__(self) -> None:
        self.profiler = cProfile.Profile()
        self.first_step = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            self.first_step = trainer.global_step
            self.profiler.enable()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.profiler.disable()


def profile(build, epochs: int) -> tuple[pstats.Stats, int]:
    """Profile the steady epochs of `trainer.fit`; return the stats and the number of steps they hold."""
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        trainer, module = build(epochs, Path(tmp))
        steady = _SteadyProfile()
        trainer.callbacks.append(steady)
        trainer.fit(module)
    return pstats.Stats(steady.profiler), trainer.global_step - steady.first_step


def interleaved_epochs(rounds: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of a steady epoch, each way fitting in turn in this process.

    Turns of about a second, rotating, cancel most of what other processes on a shared machine do.
    """
    samples: dict[str, dict[str, list[float]]] = {way: {"wall": [], "cpu": []} for way in BUILDS}
    for _, way in interleaved(list(BUILDS), rounds):
        with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
            trainer, module = BUILDS[way](2, Path(tmp))
            trainer.fit(module)
            marks = json.loads((Path(tmp) / TIMELINES[way]).read_text())
        samples[way]["wall"].append(marks["epoch_seconds"][1])
        samples[way]["cpu"].append(marks["epoch_cpu_seconds"][1])
    return {way: {kind: median(values) for kind, values in kinds.items()} for way, kinds in samples.items()}


def _per_step(stats: pstats.Stats, steps: int, match) -> list[tuple[str, float, float, float]]:
    """(function, calls/step, own µs/step, inclusive µs/step) for every function that `match` accepts."""
    rows = []
    for (file, line, name), (_, calls, own, inclusive, _) in stats.stats.items():  # type: ignore[attr-defined]
        if match(file, name):
            label = f"{Path(file).name}:{line}({name})"
            rows.append((label, calls / steps, own / steps * 1e6, inclusive / steps * 1e6))
    return sorted(rows, key=lambda r: -r[2])


def _calls_per_step(stats: pstats.Stats, steps: int) -> float:
    return sum(v[1] for v in stats.stats.values()) / steps  # type: ignore[attr-defined]


def run(quick: bool = False, epochs: int | None = None, rounds: int | None = None, top: int = 12) -> dict:
    torch.set_num_threads(1)  # as the other benchmarks' processes run (OMP_NUM_THREADS=1)
    epochs = epochs or (2 if quick else 6)
    rows, profiles = [], {}
    for way, build in BUILDS.items():
        stats, steps = profile(build, epochs)
        step_file = "handwritten" if way.startswith("handwritten") else "system.py"
        step = _per_step(stats, steps, lambda file, name, f=step_file: name == "training_step" and f in file)
        fit = _per_step(stats, steps, lambda file, name: name == "run" and file.endswith("fit_loop.py"))
        profiles[way] = {
            "steps": steps,
            "calls_per_step": _calls_per_step(stats, steps),
            "training_step_us": step[0][3],
            "fit_loop_us": fit[0][3] if fit else float("nan"),
        }
        if way == "lighter":
            ours = _per_step(stats, steps, lambda file, name: file.startswith(LIGHTER_DIR))
            profiles[way]["lighter_functions"] = ours
        rows.append([way, profiles[way]["calls_per_step"], profiles[way]["training_step_us"]])
    lighter_rows = profiles["lighter"]["lighter_functions"]
    own = sum(r[2] for r in lighter_rows)
    timed = interleaved_epochs(rounds or (2 if quick else 20))
    steps_per_epoch = profiles["lighter"]["steps"] // (epochs - 1)
    print(
        f"cProfile of the steady epochs (2 to {epochs}) of fit, digits MLP, {steps_per_epoch} steps an epoch\n"
        + table(["way", "Python calls/step", "training_step us/step (profiled)"], rows)
        + f"\nlighter's own code: {own:.0f} us/step under the profiler; by own time:\n"
        + table(["function", "calls/step", "own us/step", "incl. us/step"], lighter_rows[:top])
        + "\nunprofiled, the same process fitting each in turn, median of a steady epoch, per step:\n"
        + table(
            ["way", "wall us/step", "CPU us/step"],
            [[way, t["wall"] / steps_per_epoch * 1e6, t["cpu"] / steps_per_epoch * 1e6] for way, t in timed.items()],
        )
        + "".join(
            f"\n{way} / hand-written: wall {timed[way]['wall'] / timed['handwritten']['wall']:.3f}, "
            f"CPU {timed[way]['cpu'] / timed['handwritten']['cpu']:.3f}"
            for way in BUILDS
            if way != "handwritten"
        )
        + "\n",
        flush=True,
    )
    return {"epochs": epochs, "profiles": profiles, "lighter_own_us": own, "interleaved_epochs": timed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--rounds", type=int, help="turns of the unprofiled lighter/hand-written comparison")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # Lightning's advice about workers and loggers, once per fit
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    save(run(args.quick, args.epochs, args.rounds, args.top), args.json)


if __name__ == "__main__":
    main()
