"""What running a trial through `lighter sweep run` costs beyond its training loop, against `lighter fit`.

K one-epoch trials of the digits MLP (a sweep over `vars::timeline`, so each trial writes its own timing marks):
- `lighter fit` of each trial's config, one process after another, as a shell loop would run them;
- `lighter sweep run` (warm: trials fork from a server that imported torch, Lightning and MONAI once);
- `lighter sweep run --cold` (each trial in a fresh interpreter).
Overhead per trial = wall time / K - the median time in the training loop (first step to the end of training).

    python benchmarks/sweep_overhead.py [--quick] [--trials K] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml
from cases import CASES
from common import interleaved, lighter_command, median, run_process, save, table

WAYS = ("lighter fit, one process per trial", "lighter sweep run (warm)", "lighter sweep run --cold")


def write_sweep(folder: Path, trials: int) -> Path:
    """One config file: the digits MLP for one epoch, swept over where each trial writes its timing marks."""
    case = CASES["digits-mlp"]
    config = yaml.safe_load(case.config.read_text())
    config["project"] = str((case.config.parent / config["project"]).resolve())
    config["vars"].update(epochs=1, save_dir=str(folder / "logs"))
    config["trainer"]["callbacks"].append({"_target_": "lighter.callbacks.BatchLog"})
    config["sweep"] = {"vars::timeline": [str(folder / f"marks_{i}.json") for i in range(trials)]}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def loop_seconds(marks: Path) -> float:
    timeline = json.loads(marks.read_text())
    return timeline["finished_at"] - timeline["first_step"]


def run_way(way: str, workdir: Path, trials: int) -> dict[str, float]:
    """Wall seconds of running every trial one way, and the median seconds in each trial's training loop."""
    root = write_sweep(workdir, trials)
    out = workdir / "out"
    if way.startswith("lighter fit"):
        subprocess_wall = 0.0
        run_process([*lighter_command(), "sweep", "expand", str(root), "-o", str(out)], cwd=workdir)
        for config in sorted(out.rglob("config.yaml")):
            run_dir = workdir / "fit" / config.parent.name
            measured = run_process([*lighter_command(), "fit", str(config), "--run-dir", str(run_dir)], cwd=workdir)
            subprocess_wall += measured.wall_s
        wall = subprocess_wall
    else:
        cold = ["--cold"] if "cold" in way else []
        wall = run_process([*lighter_command(), "sweep", "run", str(root), "-o", str(out), *cold], cwd=workdir).wall_s
    loops = [loop_seconds(workdir / f"marks_{i}.json") for i in range(trials)]
    return {"wall_s": wall, "loop_s": median(loops), "overhead_s": wall / trials - median(loops)}


def run(quick: bool = False, trials: int | None = None, rounds: int | None = None) -> dict:
    trials = trials or (3 if quick else 6)
    rounds = rounds or (1 if quick else 3)
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    for r, way in interleaved(WAYS, rounds):
        with tempfile.TemporaryDirectory(prefix=f"bench-sweep-{r}-") as tmp:
            start = time.perf_counter()
            runs[way].append(run_way(way, Path(tmp), trials))
            print(f"  round {r}: {way}: {time.perf_counter() - start:.1f} s", flush=True)
    summary = {way: {k: median([x[k] for x in values]) for k in values[0]} for way, values in runs.items()}
    reference = summary[WAYS[0]]["overhead_s"]
    print(
        f"{trials} one-epoch digits-MLP trials, one at a time, median of {rounds} rounds:\n"
        + table(
            ["way", "wall s (all trials)", "training loop s/trial", "overhead s/trial", "x lighter fit"],
            [
                [way, s["wall_s"], s["loop_s"], s["overhead_s"], s["overhead_s"] / reference]
                for way, s in summary.items()
            ],
        ),
        flush=True,
    )
    return {"trials": trials, "rounds": rounds, "summary": summary, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    save(run(args.quick, args.trials, args.rounds), args.json)


if __name__ == "__main__":
    main()
