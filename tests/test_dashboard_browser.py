"""The dashboard page in a real headless Chromium (Debian's `chromium`, driven by playwright; nothing downloaded).

The page is served by the real `lighter dashboard` command over a small real sweep's output: a cascade of a sweep
leaf over three learning rates (seed 0 each) and two experiment leaves that repeat two of them over three seeds, run
by `lighter sweep run`'s API with the BatchLog callback and Lightning's CSV logger. Everything is checked through the
DOM: plotly's traces on the plot element, the SVG it drew, the runs and comparison tables. Without chromium the
tests skip on a laptop and fail under CI=true.
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
EPOCHS = 3
LRS = (0.5, 0.05, 0.0001)  # the last too small to learn in 3 epochs: its loss stays high
# A real cascade: a sweep leaf over the learning rate, and two experiment leaves that repeat two of its settings over
# three seeds (their seed 0 is the sweep's run again: the comparison counts it once).
CASCADE = {
    "experiment/toy/fast/cfg.yaml": {"system": {"optimizer": {"lr": 0.5}}, "seed": [0, 1, 2]},
    "experiment/toy/slow/cfg.yaml": {"system": {"optimizer": {"lr": 0.05}}, "seed": [0, 1, 2]},
    "sweep/toy/lr/cfg.yaml": {"sweep": {LR_AXIS: list(LRS)}},
}
RUNS = 9
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


# One worker runs every browser test, so the module's fitted cascade is built once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("browser")


def base_config(tmp: Path) -> dict:
    """The cascade's root config: a tiny classifier with accuracy, the BatchLog callback and the CSV logger."""
    config = classifier_config(tmp, epochs=EPOCHS)
    config["seed"] = 0
    config["system"]["metrics"] = {"train": {"accuracy": accuracy()}, "val": "%::train"}
    config["trainer"]["callbacks"] = [{"_target_": "lighter.callbacks.BatchLog", "flush_seconds": 0}]
    return config


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory) -> Path:
    """A small real sweep's output: `lighter sweep run` (its Python API) over a cascade in tmp."""
    chromium_or_skip()
    from lighter.sweep.sweep_run import run_trials

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
        tab.set_default_timeout(90_000)  # a crowded machine (eight test runs on two cores) is slow, not wrong
        tab.on("request", self._record)
        tab.on("pageerror", lambda err: self.errors.append(str(err)))
        # Anything not from the dashboard's own server (a CDN, a font) is refused: the page must work offline.
        tab.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
        tab.goto(url)
        tab.wait_for_selector("body[data-state=ready]", timeout=90_000)
        tab.wait_for_selector("body[data-compared]", timeout=90_000)  # the comparison arrives after the curves

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
        self.tab.wait_for_function(f"Number(document.body.dataset.renders) > {before}", timeout=60_000)

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


def legend(page) -> list[str]:
    return page.js("Array.from(document.querySelectorAll('#plot .legendtext'), e => e.textContent)")


def test_on_load_groups_by_the_first_sweep_axis_with_short_labels(page, sweep_out):
    assert page.js("document.getElementById('mode').value") == "val"
    assert page.js("document.getElementById('metric').value") == "accuracy"
    assert page.js("document.getElementById('group').value") == LR_AXIS
    lines = page.traces("run")
    assert sorted(t["meta"]["run"] for t in lines) == run_ids(sweep_out) and len(lines) == RUNS
    assert all(t["n"] == EPOCHS for t in lines)
    assert sorted(legend(page), key=float) == sorted(str(lr) for lr in LRS)  # values, not paths
    assert page.js("document.querySelector('#plot .legendtitletext').textContent").strip() == "lr"
    # The experiments' seeds join the sweep setting they repeat: one band for each of 0.5 and 0.05.
    bands = {t["name"]: t["meta"]["runs"] for t in page.traces("mean")}
    assert sorted(bands) == ["0.05", "0.5"]
    assert sorted(bands["0.5"]) == [*(f"experiment/toy/fast/trial_00{i}" for i in range(3)), "sweep/toy/lr/trial_000"]
    ticks = page.js("Array.from(document.querySelectorAll('#plot .xtick text'), e => e.textContent)")
    assert ticks == [str(epoch) for epoch in range(EPOCHS)]  # whole epochs, no 0.5
    assert page.js("document.querySelector('#plot .ytitle').textContent") == "val accuracy"
    statuses = page.js("Array.from(document.querySelectorAll('#runs-table tbody .status'), e => e.textContent)")
    assert statuses == ["done"] * RUNS


def test_the_legend_stays_clear_of_the_toolbar(page):
    page.tab.hover("#plot")  # the toolbar shows while the mouse is over the plot
    boxes = page.js(
        "[document.querySelector('#plot .legend'), document.querySelector('#plot .modebar')]"
        ".map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"
    )
    (l1, t1, r1, b1), (l2, t2, r2, b2) = boxes
    assert r2 > l2 and b2 > t2  # the toolbar is drawn
    assert r1 <= l2 or r2 <= l1 or b1 <= t2 or b2 <= t1, boxes


def test_grouping_by_leaf_draws_mean_and_std_bands_over_seeds(page, tmp_path):
    page.after_render(lambda: page.tab.select_option("#group", "leaf"))
    bands = page.traces("band")
    assert len(bands) == 2 and all(t["fill"] == "tonexty" for t in bands)  # one per experiment leaf
    assert sorted(sorted(t["meta"]["runs"]) for t in bands) == [
        [f"experiment/toy/{leaf}/trial_{i:03d}" for i in range(3)] for leaf in ("fast", "slow")
    ]
    means = sorted(t["name"] for t in page.traces("mean"))
    assert means == ["experiment/toy/fast", "experiment/toy/slow"]
    fills = page.js("Array.from(document.querySelectorAll('#plot .scatterlayer .js-fill'), p => p.getAttribute('d'))")
    assert len([d for d in fills if d and len(d) > 10]) == 2  # the bands are painted
    colours = {t["meta"]["run"]: t["line"]["color"] for t in page.traces("run")}
    assert len(set(colours.values())) == 3  # coloured by leaf
    assert "sweep/toy/lr" in legend(page)
    # The comparison follows the grouping: one row per leaf.
    page.tab.wait_for_function("document.querySelector('#compare-table th')?.textContent === 'leaf'", timeout=60_000)
    settings = page.js("Array.from(document.querySelectorAll('#compare-table tbody tr'), r => r.dataset.setting)")
    assert sorted(settings) == ["experiment/toy/fast", "experiment/toy/slow", "sweep/toy/lr"]


def test_grouping_by_a_sweep_axis_colours_by_its_value(page):
    page.after_render(lambda: page.tab.select_option("#group", "leaf"))
    page.after_render(lambda: page.tab.select_option("#group", LR_AXIS))
    colours = {t["meta"]["run"]: t["line"]["color"] for t in page.traces("run")}
    swept = [colours[f"sweep/toy/lr/trial_00{i}"] for i in range(3)]
    assert len(set(swept)) == 3
    assert {colours[f"experiment/toy/fast/trial_00{i}"] for i in range(3)} == {swept[0]}  # lr 0.5 joins its setting
    assert {colours[f"experiment/toy/slow/trial_00{i}"] for i in range(3)} == {swept[1]}
    bands = page.traces("band")
    assert len(bands) == 2 and {t["line"]["color"] for t in bands} == set(swept[:2])


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
    page.after_render(lambda: page.tab.select_option("#group", ""))
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
                                   f" === '{EPOCHS + 1}'", timeout=60_000)  # fmt: skip
        assert page.asked == [[changed]]
    finally:
        log.write_bytes(backup)
        os.utime(log, ns=(time.time_ns() + 2_000_000_000,) * 2)


def test_the_page_names_no_outside_address(page, server):
    html = page.js("document.documentElement.outerHTML")
    assert "cdn" not in html.lower()
    assert all(url.startswith(server) for url in page.requests) and any("plotly.min.js" in u for u in page.requests)


def logged_final(run_dir: Path, column: str) -> float:
    """The last epoch value Lightning logged to the run's metrics.csv."""
    import pandas as pd

    return float(pd.read_csv(run_dir / "metrics.csv")[column].dropna().iloc[-1])


def compare_rows(page) -> dict[str, dict[str, str]]:
    head = page.js("Array.from(document.querySelectorAll('#compare-table thead th'), e => e.textContent)")
    cells = page.js(
        "Array.from(document.querySelectorAll('#compare-table tbody tr'),"
        " r => Array.from(r.children, c => c.textContent))"
    )
    return {row[0]: dict(zip(head, row, strict=True)) for row in cells}


def test_comparison_shows_n_and_the_verdict_a_welch_test_supports(page, sweep_out, tmp_path):
    from scipy import stats

    from lighter.dashboard.compare import ALPHA, BETTER, FEW, WITHIN, WORSE

    before = int(page.js("document.body.dataset.compared || 0"))
    page.after_render(lambda: page.tab.select_option("#metric", "loss"))  # lower is better, continuous
    page.tab.wait_for_function(f"Number(document.body.dataset.compared) > {before}", timeout=60_000)
    assert page.js("document.getElementById('best').value") == "min"
    rows = compare_rows(page)
    assert list(rows) and set(rows) == {str(lr) for lr in LRS}
    assert {setting: rows[setting]["n"] for setting in rows} == {"0.5": "3", "0.05": "3", "0.0001": "1"}
    # Worked out here from the trials' own files: the final val loss each run logged, per setting.
    losses = {
        lr: [logged_final(sweep_out / f"experiment/toy/{leaf}/trial_00{i}", "val/loss/epoch") for i in range(3)]
        for lr, leaf in (("0.5", "fast"), ("0.05", "slow"))
    }
    losses["0.0001"] = [logged_final(sweep_out / "sweep/toy/lr/trial_002", "val/loss/epoch")]
    means = {lr: sum(v) / len(v) for lr, v in losses.items()}
    best = min(means, key=means.get)
    order = sorted(means, key=means.get)
    assert list(rows) == order and best != "0.0001"

    def expected(lr: str, other: str, beyond: str) -> str:
        if len(losses[lr]) < 2 or len(losses[other]) < 2:
            return FEW
        p = stats.ttest_ind(losses[lr], losses[other], equal_var=False).pvalue
        assert float(rows[lr]["p (Welch)"]) == pytest.approx(p, rel=0.01)
        return beyond if p < ALPHA else WITHIN

    assert rows[best]["verdict"] == expected(best, order[1], BETTER)  # the best against the runner-up
    for lr in order[1:]:
        assert rows[lr]["verdict"] == expected(lr, best, WORSE)  # every other setting against the best
    assert rows["0.0001"]["verdict"] == FEW
    assert sum(rows[lr]["verdict"] != FEW for lr in rows) >= 1  # the two settings with three seeds each meet
    mean, std = rows[best]["mean ± std"].split(" ± ")
    assert float(mean) == pytest.approx(means[best], rel=1e-3)
    assert float(std) == pytest.approx(stats.tstd(losses[best]), rel=1e-3)
    plotted = page.js("document.getElementById('compare-plot').data.find(t => t.meta.kind === 'means').y")
    assert plotted == pytest.approx([means[lr] for lr in rows])
    shot = Path(os.environ.get("LIGHTER_COMPARE_SCREENSHOT", tmp_path / "compare.png"))
    page.tab.locator("#compare-section").screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def test_final_values_agree_with_run_yaml_and_sweep_results(page, sweep_out):
    import yaml

    from lighter.dashboard.reduce import LOGGED
    from lighter.sweep.results import trial_values

    header = page.js("document.querySelector('#runs-table th[data-key=final]').textContent")
    assert header == f"final accuracy ({LOGGED})"
    assert "weighted by batch size" in page.js("document.querySelector('#runs-table th[data-key=final]').title")
    shown = page.js("Object.fromEntries(Object.entries(window.lighterDashboard.state.compare.runs)"
                    ".map(([id, r]) => [id, r.final]))")  # fmt: skip
    assert sorted(shown) == run_ids(sweep_out)
    for run, final in shown.items():
        recorded = yaml.safe_load((sweep_out / run / "run.yaml").read_text())["metrics"]["val/metrics/accuracy/epoch"]
        assert final == pytest.approx(recorded) == pytest.approx(trial_values(sweep_out / run)["val/accuracy/final"])
        cell = page.js(f"document.querySelector(\"tr[data-run='{run}'] td:nth-last-child(3)\").textContent")
        assert float(cell) == pytest.approx(final, abs=5e-5)


def test_clicking_a_parallel_coordinates_line_highlights_its_trial(page):
    assert page.js("document.getElementById('leaf').value") == "sweep/toy/lr"
    assert page.js("window.lighterDashboard.state.pcRuns") == [f"sweep/toy/lr/trial_00{i}" for i in range(3)]
    assert page.js("document.body.dataset.parcoords") is None  # not drawn until it is on screen
    page.tab.locator("#parcoords").scroll_into_view_if_needed()
    page.tab.wait_for_selector("body[data-parcoords]", timeout=60_000)
    # The lr = 0.0001 trial's line leaves the lr axis at that tick: click just right of it, on the line.
    tick = page.tab.locator("#parcoords .y-axis .tick", has_text="0.0001").first.locator("line").bounding_box()
    x, y = tick["x"] + tick["width"] + 4, tick["y"] + tick["height"] / 2
    page.tab.mouse.click(x, y)
    assert page.js("window.lighterDashboard.state.highlight") == "sweep/toy/lr/trial_002"
    assert (
        page.tab.locator("#runs-table tbody tr[data-run='sweep/toy/lr/trial_002']").get_attribute("class") == "selected"
    )
    assert [line["run"] for line in page.js(DRAWN) if line["width"] == "4px"] == ["sweep/toy/lr/trial_002"]
    page.tab.mouse.click(x, y - 60)  # between the lines: nothing changes
    assert page.js("window.lighterDashboard.state.highlight") == "sweep/toy/lr/trial_002"


@pytest.fixture(scope="module")
def axis_and_seed_out(tmp_path_factory) -> Path:
    """Trials whose axes hold a seed beside a setting (as a sweep with a seed axis records them), made by hand."""
    from test_dashboard import trial_record, write_run

    out = tmp_path_factory.mktemp("axis-and-seed")
    finished = dict(status="finished", stage="fit")  # with its batch log: a complete trial (else it reads as pending)
    for i, (lr, seed) in enumerate((lr, seed) for lr in (0.1, 0.01) for seed in (0, 1, 2)):
        name = f"trial_{i:03d}"
        trial = trial_record(name, lr=lr, seed=seed)
        write_run(out / name, epochs=5, scale=1 + lr * 10 + seed * 0.1, trial=trial, run=finished)
    # A searched trial stopped early by the pruner (status `pruned`; its run finished with the pruner's record).
    pruned = {**finished, "pruned": {"epoch": 1, "monitor": "val_loss", "value": 3.0, "reason": "pruned by the study"}}
    trial = trial_record("trial_006", "pruned", lr=0.001, seed=0)
    write_run(out / "trial_006", epochs=2, scale=3, trial=trial, run=pruned)
    return out


def test_grouping_by_an_axis_beside_a_seed_axis_draws_bands(browser, axis_and_seed_out):
    process, url = start(axis_and_seed_out)
    try:
        page = Page(browser.new_page(), url)
        page.after_render(lambda: page.tab.select_option("#group", "lr"))
        bands = page.traces("band")
        assert sorted(len(t["meta"]["runs"]) for t in bands) == [3, 3]  # one band per lr over its three seeds
        assert sorted(t["name"] for t in page.traces("mean")) == ["0.01", "0.1"]
        page.after_render(lambda: page.tab.select_option("#group", "seed"))
        assert page.traces("band") == [] and len(page.traces("run")) == 7  # coloured by seed: a line each
        # Parallel coordinates draw the pruned trial apart, in grey (colour 0 of the scale); the comparison skips it.
        page.tab.locator("#parcoords").scroll_into_view_if_needed()
        page.tab.wait_for_selector("body[data-parcoords]", timeout=60_000)
        runs = page.js("window.lighterDashboard.state.pcRuns")
        colours = page.js("document.getElementById('parcoords').data[0].line.color")
        assert len(runs) == 7 and [c == 0 for c in colours] == [run == "trial_006" for run in runs]
        assert "1 pruned (grey)" in page.js("document.getElementById('pc-note').textContent")
        counted = page.js("window.lighterDashboard.state.compare.runs")
        assert counted["trial_006"]["counted"] is False and counted["trial_000"]["counted"] is True
        assert page.errors == []
    finally:
        stop(process)
