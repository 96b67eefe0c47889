"""Startup: `lighter --help` and `lighter fit --help` (wall time and peak memory), launch-to-first-step for
`lighter fit` against the hand-written script, and where lighter's extra startup goes.

    python benchmarks/startup.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cases import CASES, lighter_overrides
from common import PYTHON, interleaved, lighter_command, median, run_process, save, table

HELP_COMMANDS = {
    "python -c pass": [PYTHON, "-c", "pass"],  # the floor: the interpreter alone
    "lighter --help": [*lighter_command(), "--help"],
    "lighter fit --help": [*lighter_command(), "fit", "--help"],
}
ROUNDS = 10

# Run in a child: first what the hand-written script imports anyway, then each of lighter's own steps in turn.
PHASES = """
import json, sys, time
t = [time.perf_counter()]
import torch, pytorch_lightning, torchmetrics, sklearn.datasets
t.append(time.perf_counter())
import lighter.cli, fire
t.append(time.perf_counter())
import lighter.config.monai_bundle
t.append(time.perf_counter())
from lighter.engine.stage import instantiate, prepare
experiment = prepare("fit", [sys.argv[1]], sys.argv[2:])
t.append(time.perf_counter())
instantiate(experiment)
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
PHASE_NAMES = (
    "import torch, Lightning, torchmetrics, sklearn (both pay this)",
    "import lighter's CLI and fire",
    "import MONAI's config engine (lighter.config.monai_bundle)",
    "read, merge, expand and validate the config; import the project",
    "resolve and build trainer and system, seed, record the run",
)


def help_times(rounds: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list] = {name: [] for name in HELP_COMMANDS}
    for _, name in interleaved(list(HELP_COMMANDS), rounds):
        samples[name].append(run_process(HELP_COMMANDS[name]))
    return {
        name: {"wall_s": median([m.wall_s for m in runs]), "max_rss_mib": median([m.max_rss_mib for m in runs])}
        for name, runs in samples.items()
    }


def phases(rounds: int, workdir: Path) -> list[float]:
    """Median seconds of each phase of lighter's startup, in a process that has imported the common stack first."""
    case = CASES["digits-mlp"]
    overrides = lighter_overrides(case, 1, workdir / "timeline.json", workdir)
    runs = []
    for _ in range(rounds):
        measured = run_process([PYTHON, "-c", PHASES, str(case.config), *overrides])
        runs.append(json.loads(measured.output.strip().splitlines()[-1]))
    return [median([run[i] for run in runs]) for i in range(len(PHASE_NAMES))]


def report(helps: dict, first_step: dict | None, phase_s: list[float]) -> str:
    lines = [table(["command", "wall s", "peak MiB"], [[n, v["wall_s"], v["max_rss_mib"]] for n, v in helps.items()])]
    if first_step:
        rows = [[way, s["first_step_s"], s["first_step_extra_s"]] for way, s in first_step.items()]
        lines += ["launch to first training step, digits MLP", table(["way", "s", "s more than hand-written"], rows)]
    lines += [
        "lighter's startup, phase by phase",
        table(["phase", "s"], [[name, s] for name, s in zip(PHASE_NAMES, phase_s, strict=True)]),
    ]
    return "\n".join(lines) + "\n"


def run(quick: bool = False, rounds: int | None = None, first_step: dict | None = None) -> dict:
    """`first_step`: the step-overhead summary of digits-mlp, whose runs already timed the first step."""
    import tempfile

    rounds = rounds or (2 if quick else ROUNDS)
    helps = help_times(rounds)
    if first_step is None:
        from step_overhead import measure

        first_step = measure("digits-mlp", max(1, rounds // 2), quick=True)["summary"]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        phase_s = phases(1 if quick else 3, Path(tmp))
    print(report(helps, first_step, phase_s), flush=True)
    return {"help": helps, "first_step": first_step, "phases": dict(zip(PHASE_NAMES, phase_s, strict=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--first-step-from", type=Path, help="step_overhead.py's --json output")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    first_step = None
    if args.first_step_from:
        cases = json.loads(args.first_step_from.read_text())
        first_step = next(c["summary"] for c in cases if c["case"] == "digits-mlp")
    save(run(args.quick, args.rounds, first_step), args.json)


if __name__ == "__main__":
    main()
