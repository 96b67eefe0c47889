"""What lighter's study adds to Optuna's own, without training, and what a searched trial costs beyond a grid's.

1. `ask`: N random-search trials of a trivial objective (a float range, a log range, a categorical), each asked,
   given one intermediate value and told complete, on an Optuna journal file:
   - Optuna alone: `study.ask(distributions)`, `trial.report`, `study.tell`;
   - through lighter's study (`lighter.sweep.study.LeafStudy`): `ask()` (the budget check, the trial's
     `config.yaml` and `trial.yaml` written atomically), the report, `mark_done()` (trial.yaml, fsynced) and
     `tell()` (read back from trial.yaml).
2. `trial`: K one-epoch trials of the tiny classifier run by `lighter sweep run` in this process (warm), as a grid
   over K learning rates and as a `tpe` search of K trials with median pruning off; overhead per trial = the
   difference of wall times / K.

    python benchmarks/search_study.py [--trials N] [--rounds R] [--only ask,trial] [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml
from common import interleaved, median, save, table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from conftest import classifier_config  # noqa: E402 - the tests' tiny classifier: 4 features, 3 classes, 16 samples

from lighter.sweep.expand import read_plans  # noqa: E402
from lighter.sweep.study import open_study, storage  # noqa: E402
from lighter.sweep.sweep_run import run_trials  # noqa: E402
from lighter.sweep.trial import Trial  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = {
    "x": optuna.distributions.FloatDistribution(-10, 10),
    "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
    "width": optuna.distributions.CategoricalDistribution([8, 16, 32]),
}
LEAF = """seed: 0
system: {model: {width: 8}, optimizer: {lr: 0.1}, x: 0.0}
sweep:
  system::x: {low: -10, high: 10}
  system::optimizer::lr: {low: 1.0e-5, high: 1.0e-1, log: true}
  system::model::width: [8, 16, 32]
search: {sampler: random, trials: %d, monitor: val/loss/epoch, seed: 0}
"""


def optuna_alone(folder: Path, trials: int) -> float:
    study = optuna.create_study(
        storage=storage(str(folder / "optuna.journal")), sampler=optuna.samplers.RandomSampler(seed=0)
    )
    start = time.perf_counter()
    for _ in range(trials):
        trial = study.ask(SPACE)
        value = trial.params["x"] ** 2
        trial.report(value, step=0)
        study.tell(trial, value)
    return time.perf_counter() - start


def through_lighter(folder: Path, trials: int) -> float:
    (folder / "leaf.yaml").write_text(LEAF % trials)
    (plan,) = read_plans(folder / "leaf.yaml")
    start = time.perf_counter()
    leaf = open_study(plan, folder / "out")
    while (trial_dir := leaf.ask()) is not None:
        record = Trial(trial_dir).record()
        number = record["study"]["number"]
        value = record["axes"]["system::x"] ** 2
        optuna.trial.Trial(leaf.study, leaf.trials()[number]._trial_id).report(value, step=0)
        Trial(trial_dir).mark_done()
        leaf.tell(trial_dir)
    return time.perf_counter() - start


def bench_ask(trials: int, rounds: int) -> dict:
    ways = {"Optuna alone": optuna_alone, "through lighter's study": through_lighter}
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    for _, way in interleaved(list(ways), rounds):
        with tempfile.TemporaryDirectory() as folder:
            seconds[way].append(ways[way](Path(folder), trials))
    alone, ours = median(seconds["Optuna alone"]), median(seconds["through lighter's study"])
    print(f"\n{trials} random-search trials, ask + report + tell, journal file, median of {rounds} rounds\n")
    rows = [[w, f"{median(s):.2f} s", f"{1000 * median(s) / trials:.2f} ms"] for w, s in seconds.items()]
    print(table(["way", "total", "per trial"], rows))
    print(f"\nratio: {ours / alone:.2f}x")
    return {"trials": trials, "seconds": seconds, "ratio": ours / alone}


def search_config(folder: Path, trials: int, searched: bool) -> Path:
    config = classifier_config(folder, epochs=1)
    trainer = config["trainer"]
    del trainer["default_root_dir"]
    trainer["callbacks"] = []
    config["seed"] = 0
    if searched:
        config["sweep"] = {"system::optimizer::lr": {"low": 1e-3, "high": 1.0, "log": True}}
        config["search"] = {"sampler": "tpe", "trials": trials, "monitor": "val/loss/epoch", "seed": 0}
    else:
        config["sweep"] = {"system::optimizer::lr": [round(0.01 * (i + 1), 4) for i in range(trials)]}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def bench_trial(trials: int, rounds: int) -> dict:
    ways = ("grid", "tpe search")
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    with tempfile.TemporaryDirectory() as warm:  # the fork server's imports, paid once, outside the figures
        run_trials(search_config(Path(warm), 1, False), Path(warm) / "out", stream=io.StringIO())
    for _, way in interleaved(list(ways), rounds):
        with tempfile.TemporaryDirectory() as folder:
            root = search_config(Path(folder), trials, way != "grid")
            start = time.perf_counter()
            result = run_trials(root, Path(folder) / "out", stream=io.StringIO())
            seconds[way].append(time.perf_counter() - start)
            assert result.exit_code == 0 and len(result.ended) == trials, result
    grid, searched = median(seconds["grid"]), median(seconds["tpe search"])
    print(f"\n{trials} one-epoch trials of the tiny classifier, lighter sweep run in-process (warm), {rounds} rounds\n")
    print(
        table(
            ["way", "wall", "per trial"],
            [[w, f"{median(s):.2f} s", f"{median(s) / trials:.3f} s"] for w, s in seconds.items()],
        )
    )
    print(f"\nsearch overhead per trial: {(searched - grid) / trials:+.3f} s")
    return {"trials": trials, "seconds": seconds, "overhead_per_trial": (searched - grid) / trials}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--trial-runs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="ask,trial")
    parser.add_argument("--quick", action="store_true", help="100 asks, 2 trial runs, 1 round")
    parser.add_argument("--save", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.trial_runs, args.rounds = 100, 2, 1
    result = {}
    if "ask" in args.only:
        result["ask"] = bench_ask(args.trials, args.rounds)
    if "trial" in args.only:
        result["trial"] = bench_trial(args.trial_runs, args.rounds)
    save(result, args.save)


if __name__ == "__main__":
    main()
