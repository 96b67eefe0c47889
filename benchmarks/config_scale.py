"""Config scale: read, merge, expand, validate, parse and resolve configs of 10 to 10,000 entries.

Half the entries are `vars::values::v<i>`, each `@`-referencing the one before it; the other half are
`_target_` components, `vars::parts::c<i>: {_target_: datetime.timedelta, seconds: "@vars::values::v<i>"}`.
A second, small file is merged over the first. Every phase is lighter's own loading path
(`lighter.config.loader.load_config`, `lighter.config.build`, `lighter.config.validate`), then MONAI's
`get_parsed_content`. Time is the median of repeated runs; peak memory comes from a separate run under
tracemalloc (which slows Python down, so it is never timed).

    python benchmarks/config_scale.py [--quick] [--sizes 10,100,1000]
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import math
import pstats
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml
from common import median, save, table
from monai.bundle import ConfigParser

from lighter.config.build import expand_macros, make_parser, prune, with_defaults
from lighter.config.loader import load_config
from lighter.config.validate import validate
from lighter.names import REF, SEP, TARGET, Stage

SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100, 1_000)
PHASES = ("read + merge", "defaults, macros, prune", "validate", "parse", "resolve")
WHAT_IF = "resolve, MONAI's own parser"


def write_configs(size: int, folder: Path) -> list[str]:
    value = f"{REF}vars{SEP}values{SEP}v"  # + index: a reference to one of the values
    values = {f"v{i}": f"{value}{i - 1}" if i else 1 for i in range(size - size // 2)}
    parts = {f"c{i}": {TARGET: "datetime.timedelta", "seconds": f"{value}{i}"} for i in range(size // 2)}
    base, experiment = folder / f"base-{size}.yaml", folder / f"experiment-{size}.yaml"
    base.write_text(yaml.safe_dump({"vars": {"values": values, "parts": parts}}, sort_keys=False))
    experiment.write_text(yaml.safe_dump({"vars": {"values": {"v0": 2}}}))
    return [str(base), str(experiment)]


def load_and_resolve(files: list[str], what_if: bool = False) -> tuple[list[float], object]:
    """Each phase's seconds, and what `vars` resolved to; `what_if`: parse and resolve with MONAI's own
    ConfigParser instead of lighter's (see `lighter.config.build.make_parser`)."""
    marks = [time.perf_counter()]
    loaded = load_config(files)
    marks.append(time.perf_counter())
    config = expand_macros(with_defaults(loaded.data), loaded)
    pruned = prune(config, Stage.FIT)
    marks.append(time.perf_counter())
    validate(config, pruned, loaded, Stage.FIT)
    marks.append(time.perf_counter())
    parser = ConfigParser(copy.deepcopy(pruned)) if what_if else make_parser(pruned, loaded)
    marks.append(time.perf_counter())
    resolved = parser.get_parsed_content("vars")
    marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks, marks[1:], strict=False)], resolved


def peak_mib(files: list[str]) -> float:
    tracemalloc.start()
    try:
        load_and_resolve(files)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def hot_spots(files: list[str], top: int = 5) -> list[tuple[str, float, float]]:
    """(function, calls, own seconds) of the functions with the most own time over the whole path."""
    profiler = cProfile.Profile()
    profiler.runcall(load_and_resolve, files)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [(f"{Path(f).name}:{line}({name})", v[1], v[2]) for (f, line, name), v in stats.items()]
    return sorted(rows, key=lambda r: -r[2])[:top]


def repeats(size: int, quick: bool) -> int:
    return 1 if quick or size >= 10_000 else 5 if size >= 1_000 else 9


def run(quick: bool = False, sizes: tuple[int, ...] | None = None) -> dict:
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-config-") as tmp:
        load_and_resolve(write_configs(10, Path(tmp)))  # warm-up: first imports of MONAI and the targets
        for size in sizes:
            files = write_configs(size, Path(tmp))
            runs, what_if = [], []
            for _ in range(repeats(size, quick)):
                runs.append(load_and_resolve(files)[0])
                what_if.append(load_and_resolve(files, what_if=True)[0][-1])
            phase_s = [median([r[i] for r in runs]) for i in range(len(PHASES))]
            results[size] = {"phases_s": dict(zip(PHASES, phase_s, strict=True)), "total_s": sum(phase_s)}
            results[size]["what_if_resolve_s"] = median(what_if)
            results[size]["peak_mib"] = peak_mib(files)
            print(f"  {size} entries: {results[size]['total_s']:.3f} s", flush=True)
        profiled = 1_000 if 1_000 in sizes and not quick else None
        spots = hot_spots(write_configs(profiled, Path(tmp))) if profiled else []
    rows = []
    previous = None
    for size, r in results.items():
        # Growth exponent against the previous size: 1 is linear, 2 quadratic.
        growth = math.log(r["total_s"] / previous[1]) / math.log(size / previous[0]) if previous else float("nan")
        phases = r["phases_s"].values()
        row = [size, *phases, r["total_s"], r["total_s"] / size * 1e6, growth, r["peak_mib"], r["what_if_resolve_s"]]
        rows.append(row)
        previous = (size, r["total_s"])
    headers = ["entries", *[f"{p} s" for p in PHASES], "total s", "us/entry", "growth", "peak MiB", f"{WHAT_IF} s"]
    text = table(headers, rows)
    if spots:
        text += f"\nmost own time at {profiled} entries (cProfile):\n" + table(["function", "calls", "own s"], spots)
    print(text + "\n", flush=True)
    return {"sizes": results, "hot_spots": spots}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    save(run(args.quick, args.sizes), args.json)


if __name__ == "__main__":
    main()
