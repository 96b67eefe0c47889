"""`lighter dashboard`: epoch aggregation of a big batch log, `/api/runs` over many runs, the page with many curves.

    python benchmarks/dashboard.py [--quick] [--json OUT] [--only aggregate,runs,page]

- aggregate: `refresh_epoch_log` on a 1,000,000-row batch log (read, reduce, write epoch_log.csv), and reading the
  cached epoch log back;
- runs: `/api/runs` over 500 trial folders: without any cache (a new store reads every record and log header, in
  process), the first request to a fresh `lighter dashboard` process (which indexed the runs at startup), then
  repeated requests (cached: each still walks the folder and stats every file); the OS file cache is warm;
- page: 100 runs x 100 epochs in headless Chromium: load to first plot, re-plot after a metric change, grouping
  into seed bands, highlighting a run from the table (each from the action to the next painted frame).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from common import REPO, table

sys.path.insert(0, str(REPO))
from lighter.dashboard.store import EPOCH_LOG, refresh_epoch_log  # noqa: E402

CHROMIUM = os.environ.get("LIGHTER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def batch_log(epochs: int, train: int, val: int, *, seed: int = 0, lr: float = 0.01) -> pd.DataFrame:
    """A batch log as BatchLog writes it: train and val rows per epoch, loss, accuracy, lr, grad_norm, time."""
    rng = np.random.default_rng(seed)
    per = train + val
    epoch = np.repeat(np.arange(epochs), per)
    is_train = np.tile(np.arange(per) < train, epochs)
    n = len(epoch)
    progress = epoch / max(epochs - 1, 1)
    return pd.DataFrame(
        {
            "epoch": epoch,
            "mode": np.where(is_train, "train", "val"),
            "batch": np.tile(np.r_[np.arange(train), np.arange(val)], epochs),
            "step": np.cumsum(is_train) - is_train,
            "loss": np.exp(-progress * lr * 300) + rng.normal(0, 0.05, n),
            "accuracy": 1 - 0.9 * np.exp(-progress * lr * 300) + rng.normal(0, 0.02, n),
            "lr": np.where(is_train, lr, np.nan),
            "grad_norm": np.where(is_train, rng.gamma(2, 1, n), np.nan),
            "time": np.arange(n) * 0.01,
        }
    )


def sweep(root: Path, runs: int, epochs: int, *, train: int = 10, val: int = 2) -> None:
    """`runs` trial folders as a sweep leaves them: config, trial and run records, batch log, a checkpoint."""
    lrs = (0.001, 0.003, 0.01, 0.03, 0.1)
    for i in range(runs):
        lr, seed = lrs[i % len(lrs)], i // len(lrs)
        trial = root / f"trial_{i:03d}"
        (trial / "checkpoints").mkdir(parents=True)
        (trial / "checkpoints" / "last.ckpt").write_bytes(b"\0" * 1024)
        (trial / "config.yaml").write_text(yaml.safe_dump({"system": {"optimizer": {"lr": lr}}, "seed": seed}))
        axes = {"system::optimizer::lr": lr, "seed": seed}
        record = {"trial": trial.name, "leaf": ".", "mode": "sweep", "axes": axes, "status": "done"}
        (trial / "trial.yaml").write_text(yaml.safe_dump({**record, "in_sweep": True, "config_hash": f"{i:08x}"}))
        (trial / "run.yaml").write_text(yaml.safe_dump({"status": "finished", "stage": "fit", "seed": seed}))
        batch_log(epochs, train, val, seed=i, lr=lr).to_csv(trial / "batch_log.csv", index=False)


def median_of(fn, rounds: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench_aggregate(work: Path, quick: bool) -> dict:
    run = work / "big"
    run.mkdir()
    log = batch_log(epochs=100, train=8000, val=2000)
    log.to_csv(run / "batch_log.csv", index=False)
    rows = len(log)
    mib = (run / "batch_log.csv").stat().st_size / 2**20

    def cold():
        (run / EPOCH_LOG).unlink(missing_ok=True)
        refresh_epoch_log(run)

    rounds = 3 if quick else 7
    cold_s, cold_all = median_of(cold, rounds)
    cached_s, _ = median_of(lambda: refresh_epoch_log(run), rounds)
    return {"rows": rows, "mib": round(mib, 1), "cold_s": cold_s, "cold_all_s": cold_all, "cached_s": cached_s}


def start_server(out: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "lighter", "dashboard", str(out), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)},
    )
    for line in process.stdout:
        if "open http" in line:
            return process, line.split("open ", 1)[1].split()[0]
    raise RuntimeError("lighter dashboard printed no URL")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def bench_runs(work: Path, quick: bool) -> dict:
    from lighter.dashboard.store import RunStore

    out = work / "sweep500"
    sweep(out, runs=500, epochs=20)

    def uncached():  # what the server does before it answers: walk, read 500 records and headers, encode
        json.dumps([run.as_dict() for run in RunStore(out).runs()])

    index_s, _ = median_of(uncached, 3 if quick else 7)
    colds, warm = [], []
    for _ in range(2 if quick else 3):
        process, url = start_server(out)
        try:
            start = time.perf_counter()
            body = json.loads(get(url + "api/runs"))
            colds.append(time.perf_counter() - start)
            assert len(body["runs"]) == 500, len(body["runs"])
            for _ in range(5 if quick else 20):
                start = time.perf_counter()
                get(url + "api/runs")
                warm.append(time.perf_counter() - start)
        finally:
            process.terminate()
            process.wait(timeout=20)
    return {
        "runs": 500,
        "index_s": index_s,
        "cold_s": statistics.median(colds),
        "cold_all_s": colds,
        "cached_s": statistics.median(warm),
    }


# Each action runs in the page and resolves on the next painted frame after plotly has drawn.
FRAME = "new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))"
ACTIONS = {
    "re-plot (metric change)": "S.metric = S.metric === 'loss' ? 'accuracy' : 'loss'; render();",
    "group into seed bands": "S.group = S.group ? '' : 'system::optimizer::lr'; render();",
    "highlight a run (row click)": "document.querySelector('#runs-table tbody tr:nth-child(7)').click();",
    "sort the table": "document.querySelector('#runs-table th').click();",
}


def bench_page(work: Path, quick: bool) -> dict:
    from playwright.sync_api import sync_playwright

    out = work / "sweep100"
    sweep(out, runs=100, epochs=100, train=5, val=1)
    process, url = start_server(out)
    results: dict = {"runs": 100, "epochs": 100, "actions": {}}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            loads = []
            for attempt in range(2 if quick else 4):  # the first load also makes the 100 epoch logs
                tab = browser.new_page(viewport={"width": 1400, "height": 900})
                start = time.perf_counter()
                tab.goto(url)
                tab.wait_for_selector("body[data-state=ready]", timeout=120_000)
                tab.evaluate(FRAME)
                loads.append(time.perf_counter() - start)
                if attempt < (1 if quick else 3):
                    tab.close()
            results["load_first_s"], results["load_s"] = loads[0], statistics.median(loads[1:])
            traces = tab.evaluate("document.getElementById('plot').data.length")
            results["traces"] = traces
            for name, action in ACTIONS.items():
                times = tab.evaluate(
                    f"""async () => {{
                        const S = window.lighterDashboard.state, render = window.lighterDashboard.render, out = [];
                        for (let i = 0; i < {4 if quick else 10}; i++) {{
                            const t = performance.now(); {action} await {FRAME}; out.push(performance.now() - t);
                        }}
                        return out;
                    }}"""
                )
                results["actions"][name] = statistics.median(times) / 1000
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=20)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", type=lambda s: s.split(","), default=["aggregate", "runs", "page"])
    args = parser.parse_args()
    results: dict = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="lighter-dashboard-bench-") as tmp:
        work = Path(tmp)
        if "aggregate" in args.only:
            a = results["aggregate"] = bench_aggregate(work, args.quick)
            rows.append([f"aggregate a {a['rows']:,}-row batch log ({a['mib']} MiB) to epoch_log.csv", "< 2 s",
                         f"{a['cold_s']:.2f} s"])  # fmt: skip
            rows.append(["read the cached epoch_log.csv back", "", f"{a['cached_s'] * 1000:.1f} ms"])
        if "runs" in args.only:
            r = results["runs"] = bench_runs(work, args.quick)
            for what, key in (
                ("/api/runs without any cache: read 500 runs, encode", "index_s"),
                ("GET /api/runs, 500 runs, first request to a fresh server", "cold_s"),
                ("GET /api/runs, 500 runs, cached", "cached_s"),
            ):
                rows.append([what, "< 0.5 s", f"{r[key] * 1000:.0f} ms"])
        if "page" in args.only:
            p = results["page"] = bench_page(work, args.quick)
            what = f"{p['runs']} runs x {p['epochs']} epochs"
            rows.append([f"page load to plotted, {what}, first view (makes the epoch logs)", "",
                         f"{p['load_first_s']:.2f} s"])  # fmt: skip
            rows.append([f"page load to plotted, {what}", "", f"{p['load_s']:.2f} s"])
            for name, seconds in p["actions"].items():
                rows.append([f"{name}, {what}", "interactive", f"{seconds * 1000:.0f} ms"])
    print(table(["what", "target", "median"], rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
