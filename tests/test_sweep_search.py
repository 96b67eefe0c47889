"""Searched sweeps: the `search:` block and YAML ranges, the study as the state, pruning, resume.

The rules and the study are tested without training (the study's trials are asked and told directly); one module
fixture runs a real search of the tiny classifier (4 trials, 2 epochs, median pruning) that the rest look at.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import classifier_config, write_yaml
from optuna.trial import TrialState
from test_sweep_expand import cascade

from lighter.errors import ConfigError
from lighter.sweep import search_block
from lighter.sweep import study as studies
from lighter.sweep.distributions import Range, to_optuna
from lighter.sweep.expand import expand, read_plans
from lighter.sweep.search_loop import worker
from lighter.sweep.slurm_search import worker_count
from lighter.sweep.study import open_study
from lighter.sweep.sweep_run import run_trials
from lighter.sweep.trial import Trial

SEARCH = "search:\n  sampler: tpe\n  trials: 4\n  monitor: val/loss/epoch\n"
LR_RANGE = "sweep:\n  system::optimizer::lr: {low: 1.0e-4, high: 1.0e-1, log: true}\n"


@pytest.mark.parametrize(
    "leaf, key, line, message",
    [
        pytest.param(LR_RANGE, "sweep::system::optimizer::lr", 2, "a range needs a search", id="range-without-search"),
        pytest.param(
            "search: {sampler: grid}\n" + LR_RANGE,
            "sweep::system::optimizer::lr",
            3,
            "a range needs a search",
            id="range-under-grid",
        ),
        pytest.param(
            "search: {sampler: tpr, trials: 2, monitor: val/loss/epoch}\n" + LR_RANGE,
            "search::sampler",
            1,
            "(?s)unknown sampler 'tpr'.*Did you mean 'tpe'",
            id="unknown-sampler",
        ),
        pytest.param(
            SEARCH + "  pruner: medain\n" + LR_RANGE,
            "search::pruner",
            5,
            "(?s)unknown pruner 'medain'.*'median'",
            id="unknown-pruner",
        ),
        pytest.param(
            SEARCH + "  budget: 3\n" + LR_RANGE, "search::budget", 5, "no key 'budget'", id="unknown-search-key"
        ),
        pytest.param(
            "search: {sampler: random, trials: 2}\n" + LR_RANGE, "search", 1, "needs `monitor`", id="no-monitor"
        ),
        pytest.param(
            SEARCH.replace("trials: 4", "trials: 0") + LR_RANGE, "search::trials", 3, "at least 1", id="no-trials"
        ),
        pytest.param(
            SEARCH + "  mode: maximum\n" + LR_RANGE, "search::mode", 5, "unknown mode 'maximum'", id="unknown-mode"
        ),
        pytest.param(
            "search: {sampler: grid, trials: 3}\n" + LR_RANGE,
            "search::trials",
            1,
            "no meaning for the grid",
            id="grid-with-trials",
        ),
        pytest.param(
            SEARCH + "sweep:\n  system::optimizer::lr: {low: 0, high: 0.1, log: true}\n",
            "sweep::system::optimizer::lr",
            6,
            "not a range: .*log",
            id="log-range-from-zero",
        ),
        pytest.param(
            SEARCH + "sweep:\n  system::optimizer::lr: {low: 0.1, hi: 0.2}\n",
            "sweep::system::optimizer::lr",
            6,
            "not a range: .*hi is not one",
            id="range-key-misspelt",
        ),
        pytest.param(
            SEARCH + "sweep:\n  +system::model::width: {low: 2.5, high: 8, int: true}\n",
            "sweep::+system::model::width",
            6,
            "whole bounds",
            id="int-range-with-a-fraction",
        ),
    ],
)
def test_search_rule_violation_names_key_file_and_line(tmp_path, leaf, key, line, message):
    root = cascade(tmp_path, {"sweep/data/m": leaf})
    with pytest.raises(ConfigError, match=message) as info:
        expand(root, tmp_path / "out")
    err = info.value
    assert (err.key, err.location.file, err.location.line) == (key, str(root / "sweep/data/m/cfg.yaml"), line)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "leaf, key, message",
    [
        pytest.param("seed: [0, 1]\n" + LR_RANGE, "sweep::system::optimizer::lr", "only the seed varies", id="range"),
        pytest.param("seed: [0, 1]\n" + SEARCH, "search", "a `search:` block is not allowed", id="search-block"),
    ],
)
def test_experiment_leaf_refuses_a_search(tmp_path, leaf, key, message):
    root = cascade(tmp_path, {"experiment/data/m": leaf})
    with pytest.raises(ConfigError, match=message) as info:
        expand(root, tmp_path / "out")
    assert info.value.key == key and info.value.location.line is not None


def test_grid_leaf_with_a_grid_search_block_expands_as_before(tmp_path):
    lists = "sweep:\n  system::optimizer::lr: [0.1, 0.01]\n"
    root = cascade(tmp_path, {"sweep/a/m": lists, "sweep/b/m": "search: {sampler: grid}\n" + lists})
    trials = expand(root, tmp_path / "out")
    by_leaf = {leaf: [t.axes for t in trials if t.leaf == leaf] for leaf in ("sweep/a/m", "sweep/b/m")}
    assert by_leaf["sweep/a/m"] == by_leaf["sweep/b/m"] == [{"system::optimizer::lr": v} for v in (0.1, 0.01)]
    assert "search" not in yaml.safe_load(trials[2].config_path.read_text())


@pytest.mark.parametrize(
    "written, expected",
    [
        pytest.param(Range(1e-4, 0.1, log=True), optuna.distributions.FloatDistribution(1e-4, 0.1, log=True), id="log"),
        pytest.param(Range(0, 1, step=0.25), optuna.distributions.FloatDistribution(0, 1, step=0.25), id="step"),
        pytest.param(Range(0, 3, int=True), optuna.distributions.IntDistribution(0, 3), id="int"),
        pytest.param((8, 16, 32), optuna.distributions.CategoricalDistribution([8, 16, 32]), id="list"),
        pytest.param(
            ({"a": 1}, {"b": 2}), optuna.distributions.CategoricalDistribution([0, 1]), id="mappings-by-index"
        ),
    ],
)
def test_written_axes_become_optuna_distributions(written, expected):
    assert to_optuna(written) == expected


def test_every_sampler_and_pruner_name_is_optunas():
    """A drift test: the names the `search:` block accepts are the ones lighter.sweep.study builds."""
    assert set(studies.PRUNERS) == set(search_block.PRUNERS)
    for name in search_block.SAMPLERS[1:]:
        made = studies.sampler(search_block.Search(name, 2, "val/loss/epoch", "min", seed=0, startup_trials=1))
        assert isinstance(made, optuna.samplers.BaseSampler)


def searched_leaf(tmp_path: Path, trials: int = 3, sampler: str = "random") -> Path:
    leaf = (
        f"search: {{sampler: {sampler}, trials: {trials}, monitor: val/loss/epoch, seed: 0}}\n"
        "sweep:\n"
        "  system::optimizer::lr: {low: 1.0e-3, high: 1.0, log: true}\n"
        "  +system::optimizer::momentum: [0.0, 0.5, 0.9]\n"
        "  +system::optimizer::dampening: {low: 0, high: 3, int: true}\n"
    )
    return cascade(tmp_path, {"sweep/data/m": leaf})


def test_asked_trials_are_numbered_by_the_study_and_hold_their_values(tmp_path):
    root = searched_leaf(tmp_path, trials=3)
    (plan,) = read_plans(root)
    leaf = open_study(plan, tmp_path / "out")
    asked = [leaf.ask() for _ in range(4)]
    assert [p.name for p in asked[:3]] == ["trial_000", "trial_001", "trial_002"]
    assert asked[3] is None, "the budget of 3 is taken by 3 running trials"
    assert (tmp_path / "out/sweep/data/m/study.journal").is_file()
    for number, trial_dir in enumerate(asked[:3]):
        config = yaml.safe_load((trial_dir / "config.yaml").read_text())
        record = Trial(trial_dir).record()
        optimizer = config["system"]["optimizer"]
        values = {k.split("::")[-1]: v for k, v in record["axes"].items()}
        assert values == {k: optimizer[k] for k in ("lr", "momentum", "dampening")}
        assert 1e-3 <= optimizer["lr"] <= 1.0 and optimizer["momentum"] in (0.0, 0.5, 0.9)
        assert isinstance(optimizer["dampening"], int) and "search" not in config and "sweep" not in config
        assert record["study"]["number"] == number and record["status"] == "pending"
        assert leaf.trials()[number].params["system::optimizer::lr"] == optimizer["lr"]
    # Expansion lists the study's trials and writes none.
    assert [t.name for t in expand(root, tmp_path / "out")] == ["trial_000", "trial_001", "trial_002"]


def test_ends_are_told_from_trial_records_and_failures_free_the_budget(tmp_path):
    (plan,) = read_plans(searched_leaf(tmp_path, trials=2))
    leaf = open_study(plan, tmp_path / "out")
    first, second = leaf.ask(), leaf.ask()
    optuna.trial.Trial(leaf.study, leaf.trials()[0]._trial_id).report(0.25, step=0)
    Trial(first).mark_done()
    Trial(second).mark_failed(1, "boom")
    assert leaf.tell(first) == "complete" and leaf.tell(second) == "fail"
    assert leaf.tell(first) == "complete", "telling twice changes nothing"
    assert leaf.trials()[0].value == 0.25 and leaf.counted() == 1
    third = leaf.ask()
    assert third.name == "trial_002" and leaf.ask() is None


def test_two_runners_on_one_study_meet_the_budget_exactly(tmp_path):
    """Two runners asking at once (as two processes on one study do): 5 live trials, no number twice."""
    (plan,) = read_plans(searched_leaf(tmp_path, trials=5))
    one, two = open_study(plan, tmp_path / "out"), open_study(plan, tmp_path / "out")
    asked = []
    for _ in range(6):
        asked += [one.ask(), two.ask()]
    made = [p for p in asked if p is not None]
    assert sorted(p.name for p in made) == [f"trial_{i:03d}" for i in range(5)]
    live = one.trials((TrialState.RUNNING,))
    assert len(live) == 5


def search_config(tmp_path: Path, *, trials: int, epochs: int, monitor: str = "val/loss/epoch") -> Path:
    """One config file as the root: the tiny classifier, searched over lr and momentum with median pruning."""
    config = classifier_config(tmp_path, epochs=epochs)
    trainer = config["trainer"]
    del trainer["default_root_dir"]
    trainer["enable_checkpointing"] = True
    trainer["callbacks"] = [{"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True}]
    config["seed"] = 0
    config["sweep"] = {
        "system::optimizer::lr": {"low": 1e-3, "high": 1.0, "log": True},
        "+system::optimizer::momentum": [0.0, 0.9],
    }
    config["search"] = {
        "sampler": "tpe", "trials": trials, "monitor": monitor, "seed": 0, "startup_trials": 2,
        "pruner": {"name": "median", "n_startup_trials": 1},
    }  # fmt: skip
    return write_yaml(tmp_path / "search.yaml", config)


def _ran(done) -> tuple[int, str, str]:
    """A `cli` fixture call's exit code, stdout and stderr."""
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A real search, run once: 4 trials of 2 epochs, one at a time (so the pruner's decisions are reproducible)."""
    tmp_path = tmp_path_factory.mktemp("search")
    root = search_config(tmp_path, trials=4, epochs=2)
    printed = io.StringIO()
    result = run_trials(root, tmp_path / "out", stream=printed)
    return root, tmp_path / "out", result, printed.getvalue()


def test_a_search_runs_its_budget_and_prunes(searched):
    root, out, result, printed = searched
    assert result.exit_code == 0, printed
    leaf_dir = out / "search"
    names = sorted(p.name for p in leaf_dir.glob("trial_*"))
    assert names == [f"trial_{i:03d}" for i in range(4)]
    study = optuna.load_study(study_name="search", storage=studies.storage(str(leaf_dir / "study.journal")))
    states = [t.state for t in study.trials]
    assert len(states) == 4 and set(states) <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert TrialState.PRUNED in states, printed
    statuses = {t.number: Trial(leaf_dir / f"trial_{t.number:03d}").record()["status"] for t in study.trials}
    assert statuses == {t.number: "pruned" if t.state is TrialState.PRUNED else "done" for t in study.trials}
    for frozen in study.trials:
        if frozen.state is TrialState.COMPLETE:
            assert frozen.value == frozen.intermediate_values[1] and not math.isnan(frozen.value)
    assert printed.splitlines()[0].startswith("search: tpe search, 0 of 4 trials complete or pruned")


def test_a_pruned_trial_ends_cleanly_with_its_reason(searched):
    _, out, _, _ = searched
    pruned = [Trial(p) for p in sorted((out / "search").glob("trial_*")) if Trial(p).status().value == "pruned"]
    trial = pruned[0]
    run = yaml.safe_load((trial.dir / "run.yaml").read_text())
    assert run["status"] == "finished"
    assert run["pruned"]["epoch"] == 0 and run["pruned"]["monitor"] == "val/loss/epoch"
    assert "median pruner" in run["pruned"]["reason"] and trial.record()["pruned"] == run["pruned"]["reason"]
    assert (trial.dir / "batch_log.csv").is_file() and (trial.dir / "checkpoints" / "last.ckpt").is_file()
    assert trial.complete(), "a pruned trial is finished: a rerun leaves it alone"


def test_a_second_run_continues_the_study_to_a_larger_budget_only(searched, tmp_path):
    root, out, _, _ = searched
    printed = io.StringIO()
    again = run_trials(root, out, stream=printed)
    assert again.exit_code == 0 and again.ended == [], printed.getvalue()
    assert "4 of 4 trials complete or pruned" in printed.getvalue()


def test_results_show_counts_best_trial_and_values(searched, cli):
    _, out, _, _ = searched
    study = optuna.load_study(study_name="search", storage=studies.storage(str(out / "search" / "study.journal")))
    best = study.best_trial
    code, printed, _ = _ran(cli(["sweep", "results", str(out)]))
    assert code == 0
    table = printed.split("\nsearches\n")[1].splitlines()
    assert table[0].split() == [
        "leaf", "sampler", "done", "complete", "pruned", "failed", "running", "best", "monitor", "value", "values"
    ]  # fmt: skip
    pruned = sum(t.state is TrialState.PRUNED for t in study.trials)
    row = table[2].split()
    assert row[:8] == ["search", "tpe", "4/4", str(4 - pruned), str(pruned), "0", "0", f"trial_{best.number:03d}"]
    assert "importances after 4 complete trials" in printed
    code, printed, _ = _ran(cli(["sweep", "results", str(out), "--format", "json"]))
    (search,) = json.loads(printed)["searches"]
    assert search["best"]["trial"] == f"trial_{best.number:03d}" and search["best"]["value"] == best.value
    assert search["best"]["values"]["system::optimizer::lr"] == best.params["system::optimizer::lr"]
    assert search["counts"] == {"complete": 4 - pruned, "pruned": pruned, "failed": 0, "running": 0}


def test_best_becomes_an_experiment_leaf_that_sweep_run_runs(searched, tmp_path, cli):
    _, out, _, _ = searched
    study = optuna.load_study(study_name="search", storage=studies.storage(str(out / "search" / "study.journal")))
    root = tmp_path / "cascade"
    write_yaml(root / "cfg.yaml", {"seed": 0})
    leaf = root / "experiment" / "data" / "best"
    code, printed, err = _ran(cli(["sweep", "best", str(out / "search"), "--to", str(leaf), "--seeds", "0,1"]))
    assert code == 0, err
    config = yaml.safe_load((leaf / "cfg.yaml").read_text())
    assert config["seed"] == [0, 1]
    assert config["system"]["optimizer"]["lr"] == study.best_trial.params["system::optimizer::lr"]
    targets = [c["_target_"] for c in config["trainer"]["callbacks"]]
    assert targets == ["pytorch_lightning.callbacks.ModelCheckpoint"], "what the sweep added is left out"
    source = yaml.safe_load((leaf / "source.yaml").read_text())
    assert source["trial"] == str(out / "search" / f"trial_{study.best_trial.number:03d}")
    assert source["number"] == study.best_trial.number and source["value"] == study.best_value
    assert f"from {source['trial']}" in (leaf / "cfg.yaml").read_text().splitlines()[0]

    code, _, err = _ran(cli(["sweep", "best", str(out / "search"), "--to", str(leaf)]))
    assert code == 2 and "overwrites nothing" in err
    code, _, err = _ran(cli(["sweep", "best", str(out / "search"), "--to", str(root / "sweep" / "x")]))
    assert code == 2 and "not inside an experiment folder" in err

    printed = io.StringIO()
    result = run_trials(root, tmp_path / "confirm", modes="experiment", stream=printed)
    assert result.exit_code == 0, printed.getvalue()
    trials = sorted((tmp_path / "confirm" / "experiment/data/best").glob("trial_*"))
    assert [Trial(t).record()["axes"] for t in trials] == [{"seed": 0}, {"seed": 1}]
    assert all(Trial(t).status().value == "done" for t in trials)


def test_a_monitor_never_logged_stops_the_search_at_search_monitor(tmp_path):
    root = search_config(tmp_path, trials=3, epochs=1, monitor="val/acc/epoch")
    printed = io.StringIO()
    with pytest.raises(ConfigError, match="(?s)monitors 'val/acc/epoch', which is never logged") as info:
        run_trials(root, tmp_path / "out", stream=printed)
    assert info.value.key == "search::monitor"
    assert info.value.location.file == str(root) and info.value.location.line is not None
    assert sorted(p.name for p in (tmp_path / "out" / "search").glob("trial_*")) == ["trial_000"], printed.getvalue()


SLOW = """
import time

import pytorch_lightning as pl


class Slow(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(0.4)
"""


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_a_search_killed_midway_then_rerun_meets_its_budget_once(tmp_path, signal_name, cli):
    """The runner's process group is killed while trials run; a rerun resumes them under their own numbers."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = search_config(tmp_path, trials=3, epochs=2)
    config = yaml.safe_load(root.read_text())
    (tmp_path / "project" / "slow.py").write_text(SLOW)
    config["trainer"]["callbacks"].append({"_target_": "project.slow.Slow"})
    config["search"]["pruner"] = "none"  # every trial runs both epochs: the kill finds one midway
    write_yaml(root, config)
    out = tmp_path / "out"
    runner = subprocess.Popen(
        [sys.executable, "-m", "lighter", "sweep", "run", str(root), "-o", str(out), "--jobs", "2"],
        cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not list(out.glob("search/trial_*/checkpoints/*.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(runner.pid, getattr(signal, signal_name))
    runner.wait(timeout=120)
    while time.monotonic() < deadline:  # the trials' processes, children of the runner's fork server, end too
        try:
            os.killpg(runner.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    storage = studies.storage(str(out / "search" / "study.journal"))
    killed = optuna.load_study(study_name="search", storage=storage)
    assert any(t.state is TrialState.RUNNING for t in killed.trials), "the kill came after the search ended"

    printed = io.StringIO()
    result = run_trials(root, out, jobs=2, stream=printed)

    assert result.exit_code == 0, printed.getvalue()
    study = optuna.load_study(study_name="search", storage=storage)
    counted = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == 3 and not [t for t in study.trials if t.state is TrialState.RUNNING]
    dirs = sorted(p.name for p in (out / "search").glob("trial_*"))
    assert dirs == sorted(f"trial_{t.number:03d}" for t in counted), "a trial number used twice, or one lost"
    for name in dirs:
        trial = Trial(out / "search" / name)
        assert trial.complete() and trial.status().value == "done"
        with (trial.dir / "batch_log.csv").open() as f:
            rows = [line for line in f.read().splitlines()[1:] if line]
        assert len(rows) == len(set(rows)), f"{name} logged a batch twice"
    resumed = [n for n in dirs if Trial(out / "search" / n).record().get("attempts", 1) > 1]
    assert resumed, "the rerun continued no killed trial"
    # A trial reruns alone with `lighter fit`, and its study keeps what the search recorded.
    alone = out / "search" / resumed[0]
    code, _, err = _ran(cli(["fit", str(alone / "config.yaml"), "--run-dir", str(tmp_path / "alone")]))
    assert code == 0, err
    assert (tmp_path / "alone" / "run.yaml").is_file()
    again = optuna.load_study(study_name="search", storage=storage)
    assert [(t.state, t.value) for t in again.trials] == [(t.state, t.value) for t in study.trials]


# ---- a study on a real PostgreSQL server ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server (tests/postgres_server.py): a skip on a laptop without it, a failure under CI=true."""
    import os

    import postgres_server

    lacking = postgres_server.missing()
    if lacking:
        problem = f"{', '.join(lacking)} not found ({postgres_server.MISSING_HINT})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL tests cannot run under CI=true: {problem}")
        pytest.skip(problem)
    server = postgres_server.start()
    yield server
    server.stop()


def with_profile(tmp_path: Path, monkeypatch, password: str) -> None:
    """LIGHTER_PROFILE names a profile that holds the database password."""
    folder = tmp_path / "profiles"
    write_yaml(folder / "db.yaml", {"vars": {"storage_password": password}})
    (folder / "db.yaml").chmod(0o600)
    monkeypatch.setenv("LIGHTER_PROFILE_DIR", str(folder))
    monkeypatch.setenv("LIGHTER_PROFILE", "db")


ASK_AND_TELL = """
import sys
from pathlib import Path

import optuna

from lighter.sweep.expand import read_plans
from lighter.sweep.study import open_study
from lighter.sweep.trial import Trial

(plan,) = read_plans(sys.argv[1])
leaf = open_study(plan, Path(sys.argv[2]), sys.argv[3])
while (trial_dir := leaf.ask()) is not None:
    number = Trial(trial_dir).record()["study"]["number"]
    optuna.trial.Trial(leaf.study, leaf.trials()[number]._trial_id).report(float(number), step=0)
    Trial(trial_dir).mark_done()
    leaf.tell(trial_dir)
"""


@pytest.mark.xdist_group("postgres")  # one server for the module: under pytest-xdist, one worker
def test_two_runner_processes_on_one_postgres_study_meet_the_budget_exactly(postgres, tmp_path, monkeypatch):
    import subprocess
    import sys

    with_profile(tmp_path, monkeypatch, postgres.password)
    root = searched_leaf(tmp_path, trials=12)
    out = tmp_path / "out"
    script = tmp_path / "ask_and_tell.py"
    script.write_text(ASK_AND_TELL)
    command = [sys.executable, str(script), str(root), str(out), postgres.url()]
    runners = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [r.communicate(timeout=300)[1] for r in runners]
    assert [r.returncode for r in runners] == [0, 0], errors

    study = optuna.load_study(study_name="sweep/data/m", storage=studies.storage(postgres.url()))
    complete = [t.number for t in study.trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 12
    dirs = sorted(p.name for p in (out / "sweep/data/m").glob("trial_*"))
    assert dirs == [f"trial_{n:03d}" for n in complete], "each directory is one complete study trial"
    over = [t for t in study.trials if t.state is TrialState.FAIL]
    assert all("over the budget" in t.user_attrs[studies.REASON_ATTR] for t in over)


@pytest.mark.xdist_group("postgres")  # one server for the module: under pytest-xdist, one worker
def test_a_search_on_postgres_keeps_the_password_out_of_its_output(postgres, tmp_path, monkeypatch):
    with_profile(tmp_path, monkeypatch, postgres.password)
    root = search_config(tmp_path, trials=2, epochs=1)
    config = yaml.safe_load(root.read_text())
    config["launcher"] = {"storage": postgres.url().replace("/studies", "/studies?application_name=lighter")}
    write_yaml(root, config)
    printed = io.StringIO()

    result = run_trials(root, tmp_path / "out", stream=printed)

    assert result.exit_code == 0, printed.getvalue()
    study = optuna.load_study(study_name="search", storage=studies.storage(postgres.url()))
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials) == 2
    assert not (tmp_path / "out" / "search" / "study.journal").exists()
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert files and not [p for p in files if postgres.password.encode() in p.read_bytes()]
    assert postgres.password not in printed.getvalue()
    # A password in the shared config would be written into every trial: refused, naming the key.
    config["launcher"] = {"storage": postgres.url(with_password=True)}
    write_yaml(root, config)
    with pytest.raises(ConfigError, match="holds a password") as info:
        run_trials(root, tmp_path / "out", stream=printed)
    assert info.value.key == "launcher::storage"


def test_the_storage_url_is_the_searchs_not_a_slurm_parameter():
    from lighter.sweep.slurm import parameters

    params, own = parameters({"storage": "postgresql+psycopg://lighter@db/studies", "partition": "debug"})
    assert own["storage"] == "postgresql+psycopg://lighter@db/studies" and "storage" not in params


def test_a_trial_whose_runner_died_before_writing_it_is_failed(tmp_path, monkeypatch):
    (plan,) = read_plans(searched_leaf(tmp_path, trials=2))
    leaf = open_study(plan, tmp_path / "out")
    leaf.study.ask()  # asked, and its runner gone before the directory was written
    assert leaf.to_continue() == [] and leaf.trials()[0].state is TrialState.RUNNING, "a moment ago: another's"
    monkeypatch.setattr(studies, "UNWRITTEN_SECONDS", 0.0)
    assert leaf.to_continue() == []
    assert leaf.trials()[0].state is TrialState.FAIL
    assert leaf.trials()[0].user_attrs[studies.REASON_ATTR] == "its runner died before it started"
    assert [p.name for p in (leaf.ask(), leaf.ask())] == ["trial_001", "trial_002"]


def test_a_runner_that_asked_past_the_budget_fails_its_trial_and_writes_nothing(tmp_path, monkeypatch):
    """Two runners checked the budget at once, and the slower asked for one trial too many."""
    (plan,) = read_plans(searched_leaf(tmp_path, trials=2))
    first, late = open_study(plan, tmp_path / "out"), open_study(plan, tmp_path / "out")
    assert first.ask() and first.ask()
    monkeypatch.setattr(late, "full", lambda: False)  # its check came before the other's asks
    assert late.ask() is None
    extra = late.trials()[2]
    assert extra.state is TrialState.FAIL and "over the budget" in extra.user_attrs[studies.REASON_ATTR]
    assert sorted(p.name for p in (tmp_path / "out/sweep/data/m").glob("trial_*")) == ["trial_000", "trial_001"]


def test_a_done_trial_that_reported_nothing_is_failed_with_its_reason(tmp_path):
    (plan,) = read_plans(searched_leaf(tmp_path, trials=1))
    leaf = open_study(plan, tmp_path / "out")
    trial_dir = leaf.ask()
    Trial(trial_dir).mark_done()
    assert leaf.tell(trial_dir) == "fail"
    assert leaf.trials()[0].user_attrs[studies.REASON_ATTR] == "no value of val/loss/epoch was reported"


# ---- a searched leaf on SLURM: what runs without the cluster (tests/test_search_slurm.py runs it on one) -------------
@pytest.mark.parametrize(
    "jobs, launcher, left, workers",
    [
        pytest.param(3, {"array_parallelism": 2}, 12, 3, id="jobs-first"),
        pytest.param(1, {"array_parallelism": 2}, 12, 2, id="array-parallelism"),
        pytest.param(1, {"slurm_array_parallelism": 4}, 12, 4, id="submitits-name"),
        pytest.param(1, {}, 5, 5, id="one-per-trial-left"),
        pytest.param(1, {}, 0, 1, id="one-to-continue-trials"),
    ],
)
def test_slurm_search_workers_come_from_jobs_then_array_parallelism_then_the_budget(jobs, launcher, left, workers):
    assert worker_count(jobs, launcher, left) == workers


def test_a_slurm_worker_stops_at_a_config_error_with_exit_2(tmp_path, capsys):
    """What an array task runs, here in this process: a trial's config error ends the worker with exit 2."""
    root = search_config(tmp_path, trials=3, epochs=1, monitor="val/acc/epoch")
    (plan,) = read_plans(root)

    assert worker(plan, str(tmp_path / "out"), None, 0, 1) == 2

    assert "monitors 'val/acc/epoch', which is never logged" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out" / "search").glob("trial_*")) == ["trial_000"]
