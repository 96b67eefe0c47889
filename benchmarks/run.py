"""Run every benchmark, print its figures and the targets table, and save the figures as JSON.

    python benchmarks/run.py [--quick] [--only step,startup,scale,profile] [--out runs/bench/results.json]

`make bench` runs this. Each suite runs in a process of its own, so none inherits another's imports,
and this one stays small. The full run takes about four minutes on 2 CPU cores; `--quick` about one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, BenchmarkError, table

HERE = Path(__file__).resolve().parent
SUITES = {"step": "step_overhead.py", "startup": "startup.py", "scale": "config_scale.py", "profile": "profile_step.py"}
SUITES["dashboard"] = "dashboard.py"
SUITES["batchlog"] = "batch_log.py"
SUITES["sweeprun"] = "sweep_overhead.py"
SUITES["sweep"] = "sweep_expand.py"
SUITES["split"] = "split.py"


def targets(results: dict) -> list[list[object]]:
    """[target, limit, measured, met] for every target whose benchmark ran."""
    rows: list[list[object]] = []

    def add(name: str, limit: str, value: float, met: bool, unit: str = "") -> None:
        rows.append([name, limit, f"{value:.3g}{unit}" if not math.isnan(value) else "n/a", "yes" if met else "NO"])

    for case in results.get("step", []):
        lighter = case["summary"]["lighter"]
        add(f"{case['case']}: s/epoch, lighter / hand-written", "<= 1.03", lighter["epoch_ratio"],
            lighter["epoch_ratio"] <= 1.03)  # fmt: skip
        if case["case"] == "digits-mlp":
            add("digits-mlp: whole process, lighter / hand-written", "<= 1.10", lighter["process_ratio"],
                lighter["process_ratio"] <= 1.10)  # fmt: skip
    if "split" in results:
        split = results["split"]
        for key, name in (("per_epoch_ratio", "from whole processes"), ("epoch_inside_ratio", "inside the process")):
            add(f"digits-mlp: per epoch {name}, lighter / hand-written", "<= 1.03", split[key], split[key] <= 1.03)
        add(f"digits-mlp: whole process, {split['epochs']} epochs, lighter / hand-written", "<= 1.10",
            split["process_ratio"], split["process_ratio"] <= 1.10)  # fmt: skip
        add("digits-mlp: fixed cost, lighter - hand-written", "<= 0.5 s", split["fixed_extra_s"],
            split["fixed_extra_s"] <= 0.5, " s")  # fmt: skip
    if "profile" in results:
        timed = results["profile"]["interleaved_epochs"]
        ratio = timed["lighter"]["wall"] / timed["handwritten"]["wall"]
        add("digits-mlp: s/epoch in one process, lighter / hand-written", "<= 1.03", ratio, ratio <= 1.03)
    if "startup" in results:
        help_ = results["startup"]["help"]["lighter --help"]
        add("lighter --help: wall time", "<= 0.5 s", help_["wall_s"], help_["wall_s"] <= 0.5, " s")
        add("lighter --help: peak memory", "<= 100 MiB", help_["max_rss_mib"], help_["max_rss_mib"] <= 100, " MiB")
        extra = results["startup"]["first_step"]["lighter"]["first_step_extra_s"]
        add("first training step, lighter - hand-written", "<= 1 s", extra, extra <= 1, " s")
    if "sweep" in results:
        for case in ("fresh", "parent edit"):
            wall = results["sweep"]["cli_s"][case]
            add(f"lighter sweep expand, 1,000 trials, {case}", "< 2 s", wall, wall < 2, " s")
    if "scale" in results:
        sizes = {int(size): figures for size, figures in results["scale"]["sizes"].items()}
        if 1000 in sizes:
            total = sizes[1000]["total_s"]
            add("config of 1,000 entries: load to resolved", "< 1 s", total, total < 1, " s")
        ordered = sorted(sizes)
        for small, big in zip(ordered, ordered[1:], strict=False):
            if small >= 100:
                growth = math.log(sizes[big]["total_s"] / sizes[small]["total_s"]) / math.log(big / small)
                add(f"config growth {small:,} -> {big:,} entries (1 = linear)", "<= 1.2", growth, growth <= 1.2)
    if "dashboard" in results:
        dash = results["dashboard"]
        if "aggregate" in dash:
            add("dashboard: 1,000,000-row batch log to epoch log", "< 2 s", dash["aggregate"]["cold_s"],
                dash["aggregate"]["cold_s"] < 2, " s")  # fmt: skip
        if "runs" in dash:
            for when, key in (("uncached", "index_s"), ("first request", "cold_s"), ("cached", "cached_s")):
                seconds = dash["runs"][key]
                add(f"dashboard: /api/runs over 500 runs, {when}", "< 0.5 s", seconds, seconds < 0.5, " s")
    return rows


def run_suite(name: str, out: Path, quick: bool, extra: list[str]) -> object:
    """Run one suite's script, its figures streaming to the terminal; return what it saved."""
    print(f"== {name} ==", flush=True)
    command = [sys.executable, str(HERE / SUITES[name]), "--json", str(out), *(["--quick"] if quick else []), *extra]
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise BenchmarkError(f"the {name} benchmark failed (exit {done.returncode}): {' '.join(command)}")
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round of short runs: checks that all of it works")
    parser.add_argument("--only", type=lambda s: s.split(","), default=list(SUITES), help=",".join(SUITES))
    parser.add_argument("--out", type=Path, default=REPO / "runs/bench/results.json")
    args = parser.parse_args()
    unknown = set(args.only) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(sorted(unknown))}; choose from {', '.join(SUITES)}")

    start = time.perf_counter()
    results: dict = {"quick": args.quick, "machine": machine()}
    print(f"machine: {results['machine']}\n", flush=True)
    parts = args.out.parent / (args.out.stem + "-parts")
    for name in SUITES:
        if name not in args.only:
            continue
        extra = []
        if name == "startup" and "step" in results:
            extra = ["--first-step-from", str(parts / "step.json")]  # the digits runs already timed the first step
        results[name] = run_suite(name, parts / f"{name}.json", args.quick, extra)

    print("== targets ==")
    print(table(["target", "limit", "measured", "met"], targets(results)))
    results["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\n{results['seconds']:.0f} s in all; figures saved to {args.out}")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "unknown CPU")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {_version('torch')}, "
        f"{platform.system()} {platform.release()}"
    )


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
