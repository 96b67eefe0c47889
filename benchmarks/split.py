"""Fixed cost and per-epoch cost: `lighter fit` against the natural hand-written module, digits MLP, 1 and N epochs.

Each round runs four processes in a rotating order: lighter and hand-written, for 1 epoch and for N. From the
whole-process times, per-epoch cost = (time(N) - time(1)) / (N - 1) and fixed cost = time(1) - per-epoch cost;
per-epoch time is also taken inside each N-epoch process (the median steady epoch, as step_overhead.py does).
Ratios and differences are paired by round, then the median is taken. The load average is recorded with every
process, since on a shared machine it decides how far a figure can be trusted.

    python benchmarks/split.py [--quick] [--rounds N] [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import interleaved, median, save, table
from step_overhead import run_once

WAYS = ("lighter", "handwritten")
CASE = "digits-mlp"
ROUNDS = 5
EPOCHS = 20


def measure(rounds: int, epochs: int) -> dict:
    runs: dict[tuple[str, int], list[dict]] = {(way, n): [] for way in WAYS for n in (1, epochs)}
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        for r, (way, n) in interleaved(list(runs), rounds):
            load = os.getloadavg()[0]
            figures = run_once(way, CASE, n, Path(tmp), f"{way}-{n}-{r}")
            runs[(way, n)].append({**figures, "load": load})

    def per_round(way: str) -> list[dict[str, float]]:
        rows = []
        for one, many in zip(runs[(way, 1)], runs[(way, epochs)], strict=True):
            per_epoch = (many["process_s"] - one["process_s"]) / (epochs - 1)
            rows.append(
                {
                    "process_s": many["process_s"],
                    "per_epoch_s": per_epoch,
                    "fixed_s": one["process_s"] - per_epoch,
                    "epoch_inside_s": many["epoch_s"],
                }
            )
        return rows

    ours, theirs = per_round("lighter"), per_round("handwritten")
    paired = list(zip(ours, theirs, strict=True))
    loads = [run["load"] for way_runs in runs.values() for run in way_runs]
    return {
        "case": CASE,
        "epochs": epochs,
        "rounds": rounds,
        "load": {"min": min(loads), "median": median(loads), "max": max(loads)},
        "medians": {
            way: {key: median([row[key] for row in rows]) for key in rows[0]}
            for way, rows in (("lighter", ours), ("handwritten", theirs))
        },
        "process_ratio": median([a["process_s"] / b["process_s"] for a, b in paired]),
        "per_epoch_ratio": median([a["per_epoch_s"] / b["per_epoch_s"] for a, b in paired]),
        "epoch_inside_ratio": median([a["epoch_inside_s"] / b["epoch_inside_s"] for a, b in paired]),
        "fixed_extra_s": median([a["fixed_s"] - b["fixed_s"] for a, b in paired]),
        "runs": {f"{way}-{n}": value for (way, n), value in runs.items()},
    }


def report(result: dict) -> str:
    keys = ("process_s", "per_epoch_s", "epoch_inside_s", "fixed_s")
    rows = [[way, *(m[k] for k in keys)] for way, m in result["medians"].items()]
    load = result["load"]
    return (
        f"{result['case']}: 1 and {result['epochs']} epochs, {result['rounds']} interleaved rounds, "
        f"load average {load['min']:.1f} to {load['max']:.1f} (median {load['median']:.1f})\n"
        + table(
            ["way", f"process s ({result['epochs']} epochs)", "s/epoch (outside)", "s/epoch (inside)", "fixed s"], rows
        )  # fmt: skip
        + "\n"
        + table(
            ["lighter / hand-written", "median of rounds"],
            [
                ["whole process", result["process_ratio"]],
                ["per epoch, from whole processes", result["per_epoch_ratio"]],
                ["per epoch, inside the process", result["epoch_inside_ratio"]],
                ["fixed cost, lighter minus hand-written (s)", result["fixed_extra_s"]],
            ],
        )
        + "\n"
    )


def run(quick: bool = False, rounds: int | None = None, epochs: int | None = None) -> dict:
    result = measure(rounds or (1 if quick else ROUNDS), epochs or (3 if quick else EPOCHS))
    print(report(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round, 1 and 3 epochs")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    save(run(args.quick, args.rounds, args.epochs), args.json)


if __name__ == "__main__":
    main()
