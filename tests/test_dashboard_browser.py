"""The dashboard page in a real headless Chromium (Debian's `chromium`, driven by playwright; nothing downloaded).

The page is served by the real `lighter dashboard` command over a small sweep's output: real `lighter fit` runs
with the BatchLog callback. Everything is checked through the DOM: plotly's traces on the plot element, the SVG
it drew, and the runs table. Without chromium the tests skip on a laptop and fail under CI=true.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import accuracy, classifier_config, write_yaml

from lighter.runner import run

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
TRIALS = [(lr, seed) for lr in (0.5, 0.05) for seed in (0, 1)]  # two settings, two seeds each
EPOCHS = 4


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


def fit_trial(root: Path, index: int, lr: float, seed: int) -> Path:
    """One sweep trial: a real fit into its directory, then its trial.yaml as the sweep records it."""
    trial = root / f"trial_{index:03d}"
    trial.mkdir(parents=True)
    config = classifier_config(root.parent / "project_src", epochs=EPOCHS)
    config["seed"] = seed
    config["system"]["optimizer"]["lr"] = lr
    config["system"]["metrics"] = {"train": {"accuracy": accuracy()}, "val": "%::train"}
    config["trainer"]["logger"] = {
        "_target_": "pytorch_lightning.loggers.CSVLogger",
        "save_dir": str(trial),
        "name": "",
        "version": "",
    }
    config["trainer"]["callbacks"] = [{"_target_": "lighter.callbacks.BatchLog", "flush_seconds": 0}]
    run("fit", [str(write_yaml(root.parent / f"trial_{index}.yaml", config))])  # what `lighter fit` calls
    record = {"trial": trial.name, "leaf": ".", "mode": "sweep", "axes": {LR_AXIS: lr, "seed": seed}}
    record.update(status="done", in_sweep=True, config_hash=f"{index:08x}")
    (trial / "trial.yaml").write_text(yaml.safe_dump(record))
    return trial


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory) -> Path:
    chromium_or_skip()
    out = tmp_path_factory.mktemp("dashboard") / "out"
    for index, (lr, seed) in enumerate(TRIALS):
        fit_trial(out / "sweep", index, lr, seed)
    return out


@pytest.fixture(scope="module")
def server(sweep_out: Path):
    """`lighter dashboard OUT --port 0`, as a user starts it; yields the URL it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lighter", "dashboard", str(sweep_out), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = None
    for line in process.stdout:
        if "open http" in line:
            url = line.split("open ", 1)[1].split()[0]
            break
    assert url, process.stderr.read()
    yield url
    process.terminate()
    process.communicate(timeout=20)


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
        self.errors: list[str] = []
        tab.on("request", lambda request: self.requests.append(request.url))
        tab.on("pageerror", lambda err: self.errors.append(str(err)))
        # Anything not from the dashboard's own server (a CDN, a font) is refused: the page must work offline.
        tab.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
        tab.goto(url)
        tab.wait_for_selector("body[data-state=ready]", timeout=30_000)

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
    assert sorted(t["meta"]["run"] for t in lines) == run_ids(sweep_out)
    assert all(t["n"] == EPOCHS for t in lines)
    assert page.svg_traces() == len(TRIALS)  # drawn, not only handed to plotly
    assert page.js("document.querySelector('#plot .ytitle').textContent") == "val accuracy"


def test_grouping_by_an_axis_draws_mean_and_std_bands_over_seeds(page, tmp_path):
    page.after_render(lambda: page.tab.select_option("#group", LR_AXIS))
    bands = page.traces("band")
    assert len(bands) == 2 and all(t["fill"] == "tonexty" for t in bands)  # one per lr, over its two seeds
    assert sorted(len(t["meta"]["runs"]) for t in bands) == [2, 2]
    means = page.traces("mean")
    assert sorted(t["name"] for t in means) == [f"{LR_AXIS} = 0.05", f"{LR_AXIS} = 0.5"]
    assert len({t["line"]["color"] for t in means}) == 2  # coloured by the axis value
    fills = page.js("Array.from(document.querySelectorAll('#plot .scatterlayer .js-fill'), p => p.getAttribute('d'))")
    assert len([d for d in fills if d and len(d) > 10]) == 2  # the bands are painted
    legend = page.js("Array.from(document.querySelectorAll('#plot .legendtext'), e => e.textContent)")
    assert f"{LR_AXIS} = 0.5" in legend
    page.tab.screenshot(path=str(tmp_path / "grouped.png"))


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
    row = page.tab.locator("#runs-table tbody tr[data-run='sweep/trial_001']")
    row.click()
    assert row.get_attribute("class") == "selected"
    drawn = {line["run"]: line for line in page.js(DRAWN)}  # what the SVG shows, after CSS
    assert drawn["sweep/trial_001"]["width"] == "4px" and drawn["sweep/trial_001"]["opacity"] == 1
    others = [line for run, line in drawn.items() if run != "sweep/trial_001"]
    assert len(others) == len(TRIALS) - 1 and all(line["opacity"] < 0.2 and line["width"] != "4px" for line in others)
    page.after_render(lambda: page.tab.select_option("#group", LR_AXIS))  # still highlighted after a redraw
    drawn = page.js(DRAWN)
    assert [line["run"] for line in drawn if line["width"] == "4px"] == ["sweep/trial_001"]
    mine = [line for line in drawn if line["kind"] in ("band", "mean") and line["opacity"] == 1]
    assert len(mine) == 2  # its seeds' band and mean stay bright; the other setting's fade
    shot = Path(os.environ.get("LIGHTER_DASHBOARD_SCREENSHOT", tmp_path / "dashboard.png"))
    page.tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.tab.locator("#runs-table tbody tr[data-run='sweep/trial_001']").click()  # a second click lets go
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
    log = sweep_out / "sweep" / "trial_002" / "batch_log.csv"
    lines = log.read_text().splitlines()
    last_epoch = max(int(line.split(",", 1)[0]) for line in lines[1:])
    added = [f"{last_epoch + 1}," + line.split(",", 1)[1] for line in lines[1:] if line.startswith(f"{last_epoch},")]
    backup = log.read_bytes()
    try:
        with log.open("a") as f:
            f.write("\n".join(added) + "\n")
        newer = time.time_ns() + 1_000_000_000
        os.utime(log, ns=(newer, newer))
        page.requests.clear()
        page.js("window.lighterDashboard.refresh()")
        page.tab.wait_for_function("document.querySelector(\"tr[data-run='sweep/trial_002']\").lastChild.textContent"
                                   f" === '{EPOCHS + 1}'", timeout=20_000)  # fmt: skip
        fetched = [url.split("run=", 1)[1] for url in page.requests if "/api/epochs" in url]
        assert fetched == ["sweep%2Ftrial_002"]
    finally:
        log.write_bytes(backup)
        os.utime(log, ns=(time.time_ns() + 2_000_000_000,) * 2)


def test_the_page_names_no_outside_address(page, server):
    html = page.js("document.documentElement.outerHTML")
    assert "cdn" not in html.lower()
    assert all(url.startswith(server) for url in page.requests) and any("plotly.min.js" in u for u in page.requests)
