"""Expanding a sweep of 1,000 trials: `lighter sweep expand` as a user runs it, and `expand()` in one process.

The cascade is configs/cascade (the digits example) with its sweep leaf widened to 10 learning rates x 10 widths
x 10 epoch counts. Three cases, by the CLI (as a user runs it) and by `expand()` in this process, in one rotation:
- fresh: into an empty folder (1,000 config.yaml + trial.yaml written);
- unchanged: again into the same folder (every trial read back, nothing rewritten);
- parent edit: after changing the root cfg.yaml (every config regenerated and rewritten).
The same rotation also times the disk alone: creating 1,000 folders of two small files with plain
writes, the least any expansion must do. On a shared machine that floor moves a lot; CPU time moves less.

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
FLOOR = "disk alone: 1,000 folders of 2 plain files"


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


def file_floor(folder: Path, trials: int = 1000) -> None:
    """Create `trials` folders of two small files with plain writes: what the disk alone costs now."""
    for i in range(trials):
        trial = folder / f"t{i}"
        trial.mkdir(parents=True)
        (trial / "config.yaml").write_text("x" * 2000)
        (trial / "trial.yaml").write_text("x" * 200)


def run(quick: bool = False, rounds: int | None = None) -> dict:
    """Every case by the CLI and in process, and the disk floor, in one rotation: each sees the same load."""
    from lighter.sweep.expand import expand

    rounds = rounds or (2 if quick else 5)
    load_before = os.getloadavg()[0]
    names = [*(f"cli {c}" for c in CASES), *(f"expand() {c}" for c in CASES), FLOOR]
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        roots = {way: make_cascade(Path(tmp) / way) for way in ("cli", "expand()")}
        outs = {way: Path(tmp) / way / "out" for way in roots}
        counter = itertools.count()
        run_process([*lighter_command(), "sweep", "expand", str(roots["cli"]), "--out", str(outs["cli"])])  # warm up
        for r, name in interleaved(names, rounds):
            way, _, case = name.partition(" ")
            if case == "fresh":
                shutil.rmtree(outs[way], ignore_errors=True)
            elif case == "parent edit":
                edit_parent(roots[way], next(counter))
            start, start_cpu = time.perf_counter(), time.process_time()
            if name == FLOOR:
                file_floor(Path(tmp) / f"floor{r}")
            elif way == "cli":
                command = [*lighter_command(), "sweep", "expand", str(roots[way]), "--out", str(outs[way])]
                measured = run_process(command, cwd=Path(tmp))
                if "1000 trials" not in measured.output:
                    raise RuntimeError(f"expected 1000 trials:\n{measured.output[-500:]}")
            else:
                assert len(expand(roots[way], outs[way])) == 1000
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    result = {
        "trials": 1000,
        "rounds": rounds,
        "load_average": [load_before, os.getloadavg()[0]],
        "cli_s": {case: median(wall[f"cli {case}"]) for case in CASES},
        "in_process": {
            case: {"wall_s": median(wall[n]), "cpu_s": median(cpu[n])} for case in CASES for n in [f"expand() {case}"]
        },  # fmt: skip
        "floor": {"wall_s": median(wall[FLOOR]), "cpu_s": median(cpu[FLOOR])},
    }
    rows = [[c, result["cli_s"][c], result["in_process"][c]["wall_s"], result["in_process"][c]["cpu_s"]] for c in CASES]
    rows.append([FLOOR, "", result["floor"]["wall_s"], result["floor"]["cpu_s"]])
    print(table(["1,000 trials", "lighter sweep expand: wall s", "expand(): wall s", "expand(): CPU s"], rows))
    print(f"load average (1 min) before and after: {load_before:.1f}, {result['load_average'][1]:.1f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, help="rounds per case (default 5; 2 with --quick)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    save(run(args.quick, args.rounds), args.json)
