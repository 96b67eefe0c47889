"""The dashboard page in a real headless Chromium (Debian's `chromium`, driven by playwright; nothing downloaded).

The page is served by the real `lighter dashboard` command over a small real sweep's output: a cascade of two
experiment leaves (two seeds each) and a sweep leaf (two learning rates), run by `lighter sweep run`'s API with the
BatchLog callback. Everything is checked through the DOM: plotly's traces on the plot element, the SVG it drew, and
the runs table. Without chromium the tests skip on a laptop and fail under CI=true.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import accuracy, classifier_config, write_yaml

CHROMIUM = Path(os.environ.get("LIGHTER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LR_AXIS = "system::optimizer::lr"
EPOCHS = 4
# A real cascade: two experiment leaves that repeat a setting over two seeds, and a sweep leaf over the learning rate.
CASCADE = {
    "experiment/toy/fast/cfg.yaml": {"system": {"optimizer": {"lr": 0.5}}, "seed": [0, 1]},
    "experiment/toy/slow/cfg.yaml": {"system": {"optimizer": {"lr": 0.05}}, "seed": [0, 1]},
    "sweep/toy/lr/cfg.yaml": {"sweep": {LR_AXIS: [0.5, 0.05]}},
}
RUNS = 6
HIGHLIGHTED = "experiment/toy/fast/trial_001"


def chromium_or_skip() -> Path:
    """The system's chromium; a skip on a laptop without it, a failure in CI, where `make test` installs it."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (Debian/Ubuntu: apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright Python package is missing (pip install playwright; no browser download needed)"
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {missing}")
    if missing:
        pytest.skip(missing)
    return CHROMIUM


def base_config(tmp: Path) -> dict:
    """The cascade's root config: a tiny classifier with accuracy, the BatchLog callback, no other logger."""
    config = classifier_config(tmp, epochs=EPOCHS)
    config["seed"] = 0
    config["system"]["metrics"] = {"train": {"accuracy": accuracy()}, "val": "%::train"}
    config["trainer"]["logger"] = False
    config["trainer"]["callbacks"] = [{"_target_": "lighter.callbacks.BatchLog", "flush_seconds": 0}]
    return config


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory) -> Path:
    """A small real sweep's output: `lighter sweep run` (its Python API) over a cascade in tmp."""
    chromium_or_skip()
    from lighter.sweep.run import run_trials

    tmp = tmp_path_factory.mktemp("dashboard")
    root, out = tmp / "cascade", tmp / "out"
    write_yaml(root / "cfg.yaml", base_config(tmp))
    for name, cfg in CASCADE.items():
        write_yaml(root / name, cfg)
    log = io.StringIO()
    assert run_trials(root, out, jobs=2, stream=log).exit_code == 0, log.getvalue()
    assert len(list(out.rglob("batch_log.csv"))) == RUNS
    return out


def start(out: Path) -> tuple[subprocess.Popen, str]:
    """`lighter dashboard OUT --port 0`, as a user starts it; returns the process and the URL it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lighter", "dashboard", str(out), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    for line in process.stdout:
        if "open http" in line:
            return process, line.split("open ", 1)[1].split()[0]
    process.kill()
    raise AssertionError(process.stderr.read())


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.communicate(timeout=20)


@pytest.fixture(scope="module")
def server(sweep_out: Path):
    process, url = start(sweep_out)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def browser():
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """The dashboard in one browser tab, with the requests it made."""

    def __init__(self, tab, url: str):
        self.tab, self.url = tab, url
        self.requests: list[str] = []
        self.asked: list[list[str]] = []  # the run ids of each POST /api/epochs
        self.errors: list[str] = []
        tab.on("request", self._record)
        tab.on("pageerror", lambda err: self.errors.append(str(err)))
        # Anything not from the dashboard's own server (a CDN, a font) is refused: the page must work offline.
        tab.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
        tab.goto(url)
        tab.wait_for_selector("body[data-state=ready]", timeout=30_000)

    def _record(self, request) -> None:
        self.requests.append(request.url)
        if request.method == "POST" and request.url.endswith("/api/epochs"):
            self.asked.append(json.loads(request.post_data)["runs"])

    def js(self, expression: str):
        return self.tab.evaluate(expression)

    def after_render(self, action) -> None:
        """Do something, then wait until the page has drawn again."""
        before = int(self.js("document.body.dataset.renders || 0"))
        action()
        self.tab.wait_for_function(f"Number(document.body.dataset.renders) > {before}", timeout=20_000)

    def traces(self, kind: str | None = None) -> list[dict]:
        """plotly's traces as drawn on the plot element: meta, line and fill of each."""
        rows = self.js(
            "Array.from(document.getElementById('plot').data, t => ({meta: t.meta, line: t.line, fill: t.fill || null,"
            " opacity: t.opacity, name: t.name, n: t.x.length}))"
        )
        return [t for t in rows if kind is None or t["meta"]["kind"] == kind]

    def svg_traces(self) -> int:
        return self.js("document.querySelectorAll('#plot .scatterlayer .trace').length")


@pytest.fixture
def page(browser, server, sweep_out):
    tab = browser.new_page(viewport={"width": 1200, "height": 900})
    dashboard = Page(tab, server)
    yield dashboard
    outside = [url for url in dashboard.requests if not url.startswith(server)]
    tab.close()
    assert outside == [] and dashboard.errors == []


def run_ids(out: Path) -> list[str]:
    return sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("batch_log.csv"))


def test_on_load_one_line_per_run_of_the_first_validation_metric(page, sweep_out):
    assert page.js("document.getElementById('mode').value") == "val"
    assert page.js("document.getElementById('metric').value") == "accuracy"
    lines = page.traces("run")
    assert sorted(t["meta"]["run"] for t in lines) == run_ids(sweep_out) and len(lines) == RUNS
    assert all(t["n"] == EPOCHS for t in lines)
    assert page.svg_traces() == RUNS  # drawn, not only handed to plotly
    assert page.js("document.querySelector('#plot .ytitle').textContent") == "val accuracy"
    statuses = page.js("Array.from(document.querySelectorAll('#runs-table tbody .status'), e => e.textContent)")
    assert statuses == ["done"] * RUNS


def test_grouping_by_leaf_draws_mean_and_std_bands_over_seeds(page, tmp_path):
    page.after_render(lambda: page.tab.select_option("#group", "leaf"))
    bands = page.traces("band")
    assert len(bands) == 2 and all(t["fill"] == "tonexty" for t in bands)  # one per experiment leaf
    assert sorted(sorted(t["meta"]["runs"]) for t in bands) == [
        [f"experiment/toy/{leaf}/trial_{i:03d}" for i in range(2)] for leaf in ("fast", "slow")
    ]
    means = sorted(t["name"] for t in page.traces("mean"))
    assert means == ["leaf = experiment/toy/fast", "leaf = experiment/toy/slow"]
    fills = page.js("Array.from(document.querySelectorAll('#plot .scatterlayer .js-fill'), p => p.getAttribute('d'))")
    assert len([d for d in fills if d and len(d) > 10]) == 2  # the bands are painted
    colours = {t["meta"]["run"]: t["line"]["color"] for t in page.traces("run")}
    assert len(set(colours.values())) == 3  # coloured by leaf
    legend = page.js("Array.from(document.querySelectorAll('#plot .legendtext'), e => e.textContent)")
    assert "leaf = sweep/toy/lr" in legend
    page.tab.screenshot(path=str(tmp_path / "grouped.png"))


def test_grouping_by_a_sweep_axis_colours_by_its_value(page):
    page.after_render(lambda: page.tab.select_option("#group", LR_AXIS))
    colours = {t["meta"]["run"]: t["line"]["color"] for t in page.traces("run")}
    swept = [colours["sweep/toy/lr/trial_000"], colours["sweep/toy/lr/trial_001"]]
    others = {colour for run, colour in colours.items() if not run.startswith("sweep/")}
    assert len(set(swept)) == 2 and len(others) == 1 and others.isdisjoint(swept)  # runs without the axis: grey
    bands = page.traces("band")  # the sweep leaf has one seed; each experiment leaf is a grey band over its seeds
    assert len(bands) == 2 and {t["line"]["color"] for t in bands} == others
    legend = page.js("Array.from(document.querySelectorAll('#plot .legendtext'), e => e.textContent)")
    assert {f"{LR_AXIS} = 0.05", f"{LR_AXIS} = 0.5", f"no {LR_AXIS}"} <= set(legend)


# Every line as painted: which run or band it is, its opacity (the group's times the stroke's, or the fill's where
# it holds a band's fill), its stroke width.
DRAWN = """Array.from(document.querySelectorAll('#plot .scatterlayer .trace'), g => {
    const meta = document.getElementById('plot').data[g.__data__[0].trace.index].meta;
    const line = getComputedStyle(g.querySelector('.js-line')), fill = g.querySelector('.js-fill');
    const own = Number(fill ? getComputedStyle(fill).fillOpacity : line.strokeOpacity);
    return {run: meta.run || null, kind: meta.kind, opacity: Number(getComputedStyle(g).opacity) * own,
            width: line.strokeWidth};
})"""


def test_clicking_a_table_row_highlights_its_curve(page, tmp_path):
    before = page.js(DRAWN)
    row = page.tab.locator(f"#runs-table tbody tr[data-run='{HIGHLIGHTED}']")
    row.click()
    assert row.get_attribute("class") == "selected"
    drawn = {line["run"]: line for line in page.js(DRAWN)}  # what the SVG shows, after CSS
    assert drawn[HIGHLIGHTED]["width"] == "4px" and drawn[HIGHLIGHTED]["opacity"] == 1
    others = [line for run, line in drawn.items() if run != HIGHLIGHTED]
    assert len(others) == RUNS - 1 and all(line["opacity"] < 0.2 and line["width"] != "4px" for line in others)
    page.after_render(lambda: page.tab.select_option("#group", "leaf"))  # still highlighted after a redraw
    drawn = page.js(DRAWN)
    assert [line["run"] for line in drawn if line["width"] == "4px"] == [HIGHLIGHTED]
    mine = [line for line in drawn if line["kind"] in ("band", "mean") and line["opacity"] == 1]
    assert len(mine) == 2  # its leaf's band and mean stay bright; the other leaf's fade
    shot = Path(os.environ.get("LIGHTER_DASHBOARD_SCREENSHOT", tmp_path / "dashboard.png"))
    page.tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.tab.locator(f"#runs-table tbody tr[data-run='{HIGHLIGHTED}']").click()  # a second click lets go
    assert "4px" not in [line["width"] for line in page.js(DRAWN)]
    page.after_render(lambda: page.tab.select_option("#group", ""))
    assert page.js(DRAWN) == before


def test_the_table_sorts_by_a_column(page):
    def finals() -> list[float]:
        cells = page.js(
            "Array.from(document.querySelectorAll('#runs-table tbody tr'), r => r.children[r.children.length - 3]"
            ".textContent)"
        )
        return [float(c) for c in cells]

    header = page.tab.locator("#runs-table th", has_text="final accuracy")
    page.after_render(header.click)
    assert finals() == sorted(finals())
    page.after_render(lambda: page.tab.locator("#runs-table th", has_text="final accuracy").click())
    assert finals() == sorted(finals(), reverse=True)


def test_mode_and_x_axis_pickers(page):
    page.after_render(lambda: page.tab.select_option("#mode", "train"))
    options = page.js("Array.from(document.getElementById('metric').options, o => o.value)")
    assert {"loss", "accuracy", "lr", "grad_norm"} <= set(options)
    page.after_render(lambda: page.tab.select_option("#x", "time"))
    assert page.js("document.querySelector('#plot .xtitle').textContent") == "time (s)"
    xs = page.js("document.getElementById('plot').data[0].x")
    assert xs == sorted(xs) and xs[-1] > 0


def test_refresh_fetches_only_the_runs_that_changed(page, sweep_out):
    changed = "sweep/toy/lr/trial_001"
    log = sweep_out / changed / "batch_log.csv"
    lines = log.read_text().splitlines()
    last_epoch = max(int(line.split(",", 1)[0]) for line in lines[1:])
    added = [f"{last_epoch + 1}," + line.split(",", 1)[1] for line in lines[1:] if line.startswith(f"{last_epoch},")]
    backup = log.read_bytes()
    try:
        with log.open("a") as f:
            f.write("\n".join(added) + "\n")
        newer = time.time_ns() + 1_000_000_000
        os.utime(log, ns=(newer, newer))
        page.asked.clear()
        page.js("window.lighterDashboard.refresh()")
        page.tab.wait_for_function(f"document.querySelector(\"tr[data-run='{changed}']\").lastChild.textContent"
                                   f" === '{EPOCHS + 1}'", timeout=20_000)  # fmt: skip
        assert page.asked == [[changed]]
    finally:
        log.write_bytes(backup)
        os.utime(log, ns=(time.time_ns() + 2_000_000_000,) * 2)


def test_the_page_names_no_outside_address(page, server):
    html = page.js("document.documentElement.outerHTML")
    assert "cdn" not in html.lower()
    assert all(url.startswith(server) for url in page.requests) and any("plotly.min.js" in u for u in page.requests)


@pytest.fixture(scope="module")
def axis_and_seed_out(tmp_path_factory) -> Path:
    """Trials whose axes hold a seed beside a setting (as a sweep with a seed axis records them), made by hand."""
    from test_dashboard import trial_record, write_run

    out = tmp_path_factory.mktemp("axis-and-seed")
    for i, (lr, seed) in enumerate((lr, seed) for lr in (0.1, 0.01) for seed in (0, 1, 2)):
        name = f"trial_{i:03d}"
        write_run(out / name, epochs=5, scale=1 + lr * 10 + seed * 0.1, trial=trial_record(name, lr=lr, seed=seed))
    return out


def test_grouping_by_an_axis_beside_a_seed_axis_draws_bands(browser, axis_and_seed_out):
    process, url = start(axis_and_seed_out)
    try:
        page = Page(browser.new_page(), url)
        page.after_render(lambda: page.tab.select_option("#group", "lr"))
        bands = page.traces("band")
        assert sorted(len(t["meta"]["runs"]) for t in bands) == [3, 3]  # one band per lr over its three seeds
        assert sorted(t["name"] for t in page.traces("mean")) == ["lr = 0.01", "lr = 0.1"]
        page.after_render(lambda: page.tab.select_option("#group", "seed"))
        assert page.traces("band") == [] and len(page.traces("run")) == 6  # coloured by seed: a line each
        assert page.errors == []
    finally:
        stop(process)
