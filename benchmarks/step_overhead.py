"""Step overhead: one experiment run by `lighter fit`, by a hand-written LightningModule and by a plain loop.

Each way runs in its own process, interleaved round by round. Per-epoch time comes from marks the process
takes itself (the first epoch, which pays for warm-up, is left out); whole-process time is measured outside.

    python benchmarks/step_overhead.py [--quick] [--rounds N] [--cases digits-mlp,cnn]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

from cases import CASES, Case, lighter_overrides, script_args
from common import PYTHON, BenchmarkError, interleaved, lighter_command, median, run_process, save, table

HERE = Path(__file__).resolve().parent
WAYS = ("lighter", "handwritten", "plain")
REFERENCE = "handwritten"
ROUNDS = 5


def command(way: str, name: str, case: Case, epochs: int, timeline: Path, save_dir: Path) -> list[str]:
    if way == "lighter":
        return [*lighter_command(), "fit", str(case.config), *lighter_overrides(case, epochs, timeline, save_dir)]
    return [PYTHON, str(HERE / f"{way}.py"), *script_args(name, epochs, timeline, save_dir)]


def run_once(way: str, name: str, epochs: int, workdir: Path, tag: str) -> dict[str, float]:
    """One process: its wall time, peak memory, steady per-epoch time and launch-to-first-step time."""
    timeline = workdir / f"{tag}.json"
    measured = run_process(command(way, name, CASES[name], epochs, timeline, workdir))
    marks = json.loads(timeline.read_text())
    steady = slice(1, None) if len(marks["epoch_seconds"]) > 1 else slice(None)  # epoch 0 pays for warm-up
    return {
        "epoch_s": median(marks["epoch_seconds"][steady]),
        "epoch_cpu_s": median(marks["epoch_cpu_seconds"][steady]),
        "process_s": measured.wall_s,
        "first_step_s": marks["first_step"] - measured.launched_at,
        # From the end of training to the exit: teardown, which startup and epochs do not show.
        "exit_s": measured.launched_at + measured.wall_s - marks["finished_at"],
        "max_rss_mib": measured.max_rss_mib,
        "checksum": marks["checksum"],
        "final_loss": marks["final_loss"],
    }


def check_same_work(name: str, runs: dict[str, list[dict[str, float]]]) -> None:
    """Every way must start from the same weights and end at the same loss, or the timings compare nothing."""
    for field in ("checksum", "final_loss"):
        values = {way: run[field] for way, way_runs in runs.items() for run in way_runs}
        first = next(iter(values.values()))
        if not all(math.isclose(v, first, rel_tol=1e-5) for v in values.values()):
            raise BenchmarkError(f"{name}: the ways of training disagree on {field}: {values}")


def measure(name: str, rounds: int, quick: bool) -> dict:
    case = CASES[name]
    epochs = case.quick_epochs if quick else case.epochs
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        for r, way in interleaved(WAYS, rounds):
            runs[way].append(run_once(way, name, epochs, Path(tmp), f"{way}-{r}"))
    check_same_work(name, runs)
    summary = {}
    for way in WAYS:
        summary[way] = {key: median([run[key] for run in runs[way]]) for key in runs[way][0]}
        for key in ("epoch_s", "epoch_cpu_s", "process_s"):
            # Paired by round: both processes of a round saw the same spell of load from other work.
            paired = [a[key] / b[key] for a, b in zip(runs[way], runs[REFERENCE], strict=True)]
            summary[way][key.replace("_s", "_ratio")] = median(paired)
        summary[way]["first_step_extra_s"] = median(
            [a["first_step_s"] - b["first_step_s"] for a, b in zip(runs[way], runs[REFERENCE], strict=True)]
        )
    return {"case": name, "epochs": epochs, "rounds": rounds, "summary": summary, "runs": runs}


def report(result: dict) -> str:
    columns = ("epoch_s", "epoch_ratio", "epoch_cpu_s", "epoch_cpu_ratio", "process_s", "process_ratio")
    columns += ("first_step_s", "max_rss_mib")
    rows = [[way, *(s[c] for c in columns)] for way, s in result["summary"].items()]
    ratio = f"x {REFERENCE}"
    headers = ["way", "s/epoch", ratio, "CPU s/epoch", ratio, "process s", ratio, "first step s", "peak MiB"]
    title = f"{result['case']}: {result['epochs']} epochs, median of {result['rounds']} interleaved runs"
    return f"{title}\n{table(headers, rows)}"


def run(quick: bool = False, rounds: int | None = None, cases: list[str] | None = None) -> list[dict]:
    results = []
    for name in cases or list(CASES):
        result = measure(name, rounds or (1 if quick else ROUNDS), quick)
        print(report(result) + "\n", flush=True)
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round of the short runs")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--cases", type=lambda s: s.split(","), help=f"some of {', '.join(CASES)}")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    save(run(args.quick, args.rounds, args.cases), args.json)


if __name__ == "__main__":
    main()
