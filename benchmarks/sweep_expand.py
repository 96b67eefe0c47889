"""Expanding a sweep of 1,000 trials: `lighter sweep expand` as a user runs it, and `expand()` in one process.

The cascade is configs/cascade (the digits example) with its sweep leaf widened to 10 learning rates x 10 widths
x 10 epoch counts. Three cases, in rotating order each round:
- fresh: into an empty folder (1,000 config.yaml + trial.yaml written);
- unchanged: again into the same folder (every trial read back, nothing rewritten);
- parent edit: after changing the root cfg.yaml (every config regenerated and rewritten).

    python benchmarks/sweep_expand.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import REPO, interleaved, lighter_command, median, run_process, save, table

CASCADE = REPO / "configs" / "cascade"
LEAF = "sweep/digits/cnn/short"
AXES = """\
trainer:
  max_epochs: 3
sweep:
  system::optimizer::lr: [0.0001, 0.0002, 0.0003, 0.0005, 0.0007, 0.001, 0.002, 0.003, 0.005, 0.007]
  system::model::width: [4, 8, 12, 16, 20, 24, 28, 32, 48, 64]
  trainer::max_epochs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
"""
CASES = ("fresh", "unchanged", "parent edit")


def make_cascade(folder: Path) -> Path:
    """A copy of configs/cascade with a 1,000-trial sweep leaf (experiment leaf dropped) and an absolute project."""
    root = folder / "cascade"
    shutil.copytree(CASCADE, root, ignore=shutil.ignore_patterns("experiment"))
    cfg = root / "cfg.yaml"
    cfg.write_text(cfg.read_text().replace("project: ../../projects/digits", f"project: {REPO / 'projects/digits'}"))
    (folder / "library").symlink_to(REPO / "configs" / "library")  # the dataset level's file macro: ../../../library
    (root / LEAF / "cfg.yaml").write_text(AXES)
    return root


def edit_parent(root: Path, value: int) -> None:
    cfg = root / "cfg.yaml"
    lines = [line for line in cfg.read_text().splitlines() if not line.startswith("vars:")]
    cfg.write_text("\n".join(lines) + f"\nvars: {{edit: {value}}}\n")


def cli_round(root: Path, out: Path, case: str, counter: itertools.count) -> float:
    if case == "fresh":
        shutil.rmtree(out, ignore_errors=True)
    elif case == "parent edit":
        edit_parent(root, next(counter))
    measured = run_process([*lighter_command(), "sweep", "expand", str(root), "--out", str(out)], cwd=root.parent)
    if "1000 trials" not in measured.output:
        raise RuntimeError(f"expected 1000 trials:\n{measured.output[-500:]}")
    return measured.wall_s


def in_process(root: Path, out: Path, rounds: int) -> dict[str, float]:
    from lighter.sweep.expand import expand

    times: dict[str, list[float]] = {case: [] for case in CASES}
    counter = itertools.count(10_000)
    for _, case in interleaved(CASES, rounds):
        if case == "fresh":
            shutil.rmtree(out, ignore_errors=True)
        elif case == "parent edit":
            edit_parent(root, next(counter))
        start = time.perf_counter()
        trials = expand(root, out)
        times[case].append(time.perf_counter() - start)
        assert len(trials) == 1000
    return {case: median(values) for case, values in times.items()}


def file_floor(folder: Path, trials: int = 1000) -> float:
    """Seconds to create `trials` folders of two small files with plain writes: what the disk alone costs now."""
    start = time.perf_counter()
    for i in range(trials):
        trial = folder / f"t{i}"
        trial.mkdir(parents=True)
        (trial / "config.yaml").write_text("x" * 2000)
        (trial / "trial.yaml").write_text("x" * 200)
    return time.perf_counter() - start


def run(quick: bool = False, rounds: int | None = None) -> dict:
    rounds = rounds or (2 if quick else 5)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = make_cascade(Path(tmp))
        out = Path(tmp) / "out"
        cli: dict[str, list[float]] = {case: [] for case in CASES}
        counter = itertools.count()
        cli_round(root, out, "fresh", counter)  # warm the file cache
        for _, case in interleaved(CASES, rounds):
            cli[case].append(cli_round(root, out, case, counter))
        inproc = in_process(root, Path(tmp) / "out-inprocess", rounds)
        floor = median([file_floor(Path(tmp) / f"floor{r}") for r in range(rounds)])
    result = {
        "trials": 1000,
        "rounds": rounds,
        "load_average": [load_before, os.getloadavg()[0]],
        "file_floor_s": floor,
        "cli_s": {case: median(v) for case, v in cli.items()},
        "in_process_s": inproc,
    }
    rows = [[case, result["cli_s"][case], inproc[case]] for case in CASES]
    rows.append(["(disk alone: 1,000 folders of 2 plain files)", "", floor])
    print(table(["1,000 trials", "lighter sweep expand: wall s", "expand() in process: s"], rows))
    print(f"load average (1 min) before and after: {load_before:.1f}, {result['load_average'][1]:.1f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, help="rounds per case (default 5; 2 with --quick)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    save(run(args.quick, args.rounds), args.json)
