"""The benchmarks run, and compare like with like. No timing is asserted: figures live in benchmarks/README.md."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import pytest
import yaml

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # The benchmark scripts import each other as top-level modules, as `python benchmarks/x.py` does.
    monkeypatch.syspath_prepend(str(BENCH))


def _csv_columns(folder: Path) -> list[str]:
    with (folder / "version_0" / "metrics.csv").open() as f:
        return sorted(next(csv.reader(f)))


def test_three_ways_start_alike_log_alike_and_end_alike(tmp_path):
    import handwritten
    import plain
    from cases import CASES, lighter_overrides, script_args

    from lighter.engine import call_stage

    case = CASES["digits-mlp"]
    handwritten.main(script_args("digits-mlp", 1, tmp_path / "handwritten.json", tmp_path))
    plain.main(script_args("digits-mlp", 1, tmp_path / "plain.json", tmp_path))
    call_stage("fit", [str(case.config)], lighter_overrides(case, 1, tmp_path / "lighter.json", tmp_path))

    marks = {way: json.loads((tmp_path / f"{way}.json").read_text()) for way in ("lighter", "handwritten", "plain")}
    assert len({m["checksum"] for m in marks.values()}) == 1, marks  # same seed, same initial weights
    losses = [m["final_loss"] for m in marks.values()]
    assert all(math.isclose(loss, losses[0], rel_tol=1e-5) for loss in losses), marks  # same data order and steps
    columns = {way: _csv_columns(tmp_path / way) for way in marks}
    assert columns["lighter"] == columns["plain"], columns
    assert "train/metrics/accuracy/step" in columns["lighter"] and "train/optimizer/Adam/lr" in columns["lighter"]
    # The reference logs the same values as a Lightning user names them (no momentum).
    natural = {"train/loss_step", "train/loss_epoch", "train/accuracy_step", "train/accuracy_epoch", "lr"}
    assert set(columns["handwritten"]) == natural | {"epoch", "step"}, columns


@pytest.mark.slow
def test_lighter_fit_is_timed_from_outside(tmp_path):
    from step_overhead import run_once

    figures = run_once("lighter", "digits-mlp", 1, tmp_path, "lighter")

    timed = {"epoch_s", "epoch_cpu_s", "process_s", "first_step_s", "exit_s", "max_rss_mib"}
    assert set(figures) == timed | {"checksum", "final_loss"}
    # Consistency, not speed: the first step comes after the launch and before the exit.
    assert 0 < figures["first_step_s"] < figures["process_s"]
    assert figures["epoch_s"] > 0 and figures["max_rss_mib"] > 0


def test_help_commands_are_measured_one_by_one():
    from startup import HELP_COMMANDS, help_times

    figures = help_times(rounds=1)

    assert set(figures) == set(HELP_COMMANDS)
    assert all(f["wall_s"] > 0 and f["max_rss_mib"] > 0 for f in figures.values())


def test_config_scale_runs_and_feeds_the_targets_table():
    from config_scale import PHASES, run
    from run import targets

    result = json.loads(json.dumps(run(quick=True, sizes=(10, 100, 1000))))  # as run.py reads it back

    assert set(result["sizes"]) == {"10", "100", "1000"}
    for figures in result["sizes"].values():
        assert list(figures["phases_s"]) == list(PHASES)
        assert figures["total_s"] == pytest.approx(sum(figures["phases_s"].values()))
    rows = {row[0]: row for row in targets({"scale": result})}
    assert "config of 1,000 entries: load to resolved" in rows
    assert "config growth 100 -> 1,000 entries (1 = linear)" in rows


@pytest.mark.parametrize(
    "vars_",
    [
        pytest.param(None, id="reference-chain"),
        pytest.param(
            {
                "math": "$import math",
                "root": "$math.sqrt(16)",
                "parts": {"c": {"_target_": "datetime.timedelta", "seconds": "@vars::root"}},
                "sum": "$@vars::root + @vars::parts::c.total_seconds()",
            },
            id="import-statement",
        ),
    ],
)
def test_lighter_resolves_what_monai_resolves(tmp_path, vars_):
    # lighter's parser skips MONAI's repeated import scans (make_parser); it must only be faster, never different.
    from config_scale import write_configs
    from monai.bundle import ConfigParser

    from lighter.config.build import make_parser
    from lighter.config.loader import load_config

    if vars_ is None:
        files = write_configs(60, tmp_path)
    else:
        (tmp_path / "c.yaml").write_text(yaml.safe_dump({"vars": vars_}))
        files = [str(tmp_path / "c.yaml")]
    loaded = load_config(files)
    monai = ConfigParser(copy.deepcopy(loaded.data))

    assert make_parser(loaded.data, loaded).get_parsed_content("vars") == monai.get_parsed_content("vars")


def test_cases_match_their_configs():
    # Drift: the lighter config of each case builds what the hand-written and plain scripts build.
    from cases import CASES, lighter_overrides
    from workload import data, models

    for name, case in CASES.items():
        config = yaml.safe_load(case.config.read_text())
        system = config["system"]
        assert system["model"]["_target_"] == f"project.models.{case.model}", name
        assert system["dataloaders"]["train"]["dataset"]["_target_"] == f"project.data.{case.data}", name
        assert callable(getattr(models, case.model)) and callable(getattr(data, case.data))
        overridden = {o.split("=")[0].removeprefix("vars::") for o in lighter_overrides(case, 1, Path(), Path())}
        assert overridden - {"seed"} <= set(config["vars"]), name  # every override lands on a var the config uses


def test_batch_log_benchmark_times_each_hook_of_a_fit_that_writes_the_log(tmp_path):
    from batch_log import EPOCHS, HOOKS, fit

    marks, steps, callback = fit("with BatchLog", tmp_path, timed=True)

    assert len(marks["epoch_seconds"]) == EPOCHS and steps == 57
    assert set(callback.seconds) == set(HOOKS) and all(s > 0 for s in callback.seconds.values())
    assert sum(1 for _ in (tmp_path / "batch_log.csv").open()) == 1 + EPOCHS * steps
