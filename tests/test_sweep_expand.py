"""Sweep expansion: the cascade, the axes and their mode rules, and idempotent trial directories."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from lighter.config.loader import load_config
from lighter.errors import ConfigError
from lighter.sweep.config_text import ConfigText, with_values
from lighter.sweep.expand import expand, load_trials
from lighter.sweep.trial import Status, Trial

ROOT_CFG = """\
project: {project}
seed: 0
trainer:
  max_epochs: 1
system:
  model: {{_target_: torch.nn.Linear, in_features: 4, out_features: 3}}
  optimizer: {{_target_: torch.optim.SGD, lr: 0.1}}
"""


def cascade(tmp_path: Path, leaves: dict[str, str], root: str | None = None) -> Path:
    """A cascade under tmp_path/cascade: the root cfg.yaml plus a cfg.yaml per folder named in `leaves`."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    base = tmp_path / "cascade"
    (base).mkdir(exist_ok=True)
    (base / "cfg.yaml").write_text(root if root is not None else ROOT_CFG.format(project=project))
    for folder, text in leaves.items():
        (base / folder).mkdir(parents=True, exist_ok=True)
        (base / folder / "cfg.yaml").write_text(text)
    return base


def config_of(trial: Trial) -> dict:
    return yaml.safe_load(trial.config_path.read_text())


LR_AXIS = "sweep:\n  system::optimizer::lr: [0.1, 0.01]\n"


@pytest.mark.parametrize(
    "leaves, key, file, line, message",
    [
        pytest.param(
            {"sweep/data/m": "seed: [0, 1]\n"},
            "seed",
            "sweep/data/m/cfg.yaml",
            1,
            "in sweep mode the seed is a scalar",
            id="sweep-mode-seed-list",
        ),
        pytest.param(
            {"experiment/data/m": "seed: [0, 1]\n" + LR_AXIS},
            "sweep::system::optimizer::lr",
            "experiment/data/m/cfg.yaml",
            3,
            "in experiment mode only the seed varies",
            id="experiment-mode-axis",
        ),
        pytest.param(
            {"sweep/data/m": "sweep:\n  system::optimizer::lrr: [0.1]\n"},
            "sweep::system::optimizer::lrr",
            "sweep/data/m/cfg.yaml",
            2,
            "Did you mean 'system::optimizer::lr'",
            id="axis-key-missing",
        ),
        pytest.param(
            {"sweep/data/m": "sweep:\n  system::optimizer::lr: 0.1\n"},
            "sweep::system::optimizer::lr",
            "sweep/data/m/cfg.yaml",
            2,
            "an axis is a list of values",
            id="axis-not-a-list",
        ),
        pytest.param(
            {"sweep/data/m": "sweep:\n  system::optimizer::lr: [0.1, 0.1]\n"},
            "sweep::system::optimizer::lr",
            "sweep/data/m/cfg.yaml",
            2,
            "appears twice",
            id="axis-value-twice",
        ),
        pytest.param(
            {"sweep/data/m": "sweep:\n  system::optimizer::lr: []\n"},
            "sweep::system::optimizer::lr",
            "sweep/data/m/cfg.yaml",
            2,
            "at least one value",
            id="axis-empty",
        ),
        pytest.param(
            {"sweep/data/m": "sweep:\n  seed: [0, 1]\n"},
            "sweep::seed",
            "sweep/data/m/cfg.yaml",
            2,
            "`seed` cannot be a `sweep:` axis",
            id="seed-in-sweep-block",
        ),
        pytest.param(
            {"sweep/data/m": "sweep: [0.1, 0.2]\n"},
            "sweep",
            "sweep/data/m/cfg.yaml",
            1,
            "maps key paths to lists",
            id="sweep-block-not-a-mapping",
        ),
        pytest.param(
            {"sweep/data/m": "sweep:\n  +trainer::max_epochs::x: [1, 2]\n"},
            "sweep::+trainer::max_epochs::x",
            "sweep/data/m/cfg.yaml",
            2,
            "the axis cannot be set: cannot reach 'x'",
            id="plus-axis-inside-a-value",
        ),
        pytest.param(
            {"experiment/data/m": "seed: [0, zero]\n"},
            "seed",
            "experiment/data/m/cfg.yaml",
            1,
            "a seed is an integer",
            id="seed-not-an-integer",
        ),
    ],
)
def test_mode_rule_violation_names_key_file_and_line(tmp_path, leaves, key, file, line, message):
    root = cascade(tmp_path, leaves)
    with pytest.raises(ConfigError, match=message) as info:
        expand(root, tmp_path / "out")
    err = info.value
    assert err.key == key
    assert err.location.file == str(root / file)
    assert err.location.line == line
    assert not (tmp_path / "out").exists(), "a broken leaf must stop expansion before anything is written"


def test_missing_seed_is_an_error(tmp_path):
    no_seed = ROOT_CFG.format(project=tmp_path).replace("seed: 0\n", "")
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS}, root=no_seed)
    with pytest.raises(ConfigError, match="needs a seed") as info:
        expand(root, tmp_path / "out")
    assert info.value.key == "seed"
    assert "seed: 0" in info.value.suggestion


def test_leaf_outside_mode_folder_is_an_error(tmp_path):
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS, "experiments/data/m": "seed: [0, 1]\n"})
    with pytest.raises(ConfigError, match="not inside a mode folder") as info:
        expand(root, tmp_path / "out")
    assert "Did you mean 'experiment'" in info.value.suggestion


def test_axis_with_plus_creates_a_key(tmp_path):
    root = cascade(tmp_path, {"sweep/data/m": "sweep:\n  +system::optimizer::momentum: [0.0, 0.9]\n"})
    trials = expand(root, tmp_path / "out")
    assert [config_of(t)["system"]["optimizer"]["momentum"] for t in trials] == [0.0, 0.9]
    assert trials[0].axes == {"system::optimizer::momentum": 0.0}


def test_cascade_merges_leaf_over_parents_and_writes_the_product(tmp_path):
    root = cascade(
        tmp_path,
        {
            "sweep/data": "trainer: {max_epochs: 2}\nsweep:\n  system::optimizer::lr: [0.1, 0.01]\n",
            "sweep/data/m": "sweep:\n  system::model::out_features: [3, 5]\n",
            "experiment/data/m": "seed: [0, 1, 2]\n",
        },
    )
    trials = expand(root, tmp_path / "out")
    names = [str(t.dir.relative_to(tmp_path / "out")) for t in trials]
    assert names == [f"experiment/data/m/trial_00{i}" for i in range(3)] + [
        f"sweep/data/m/trial_00{i}" for i in range(4)
    ]
    swept = [config_of(t) for t in trials[3:]]
    assert [(c["system"]["optimizer"]["lr"], c["system"]["model"]["out_features"]) for c in swept] == [
        (0.1, 3),
        (0.1, 5),
        (0.01, 3),
        (0.01, 5),
    ]
    assert all(c["trainer"]["max_epochs"] == 2 and "sweep" not in c for c in swept)
    assert [config_of(t)["seed"] for t in trials[:3]] == [0, 1, 2]
    record = trials[4].record()
    assert record["trial"] == "trial_001" and record["leaf"] == "sweep/data/m" and record["mode"] == "sweep"
    assert record["axes"] == {"system::optimizer::lr": 0.1, "system::model::out_features": 5}
    assert record["status"] == "pending" and record["in_sweep"] is True


def test_filters_pick_leaves(tmp_path):
    root = cascade(tmp_path, {"sweep/a/m": LR_AXIS, "sweep/b/m": LR_AXIS, "experiment/a/m": "seed: [0, 1]\n"})
    assert {t.leaf for t in expand(root, tmp_path / "o1", modes="experiment")} == {"experiment/a/m"}
    assert {t.leaf for t in expand(root, tmp_path / "o2", datasets=["b"])} == {"sweep/b/m"}
    assert {t.leaf for t in expand(root, tmp_path / "o3", select="sweep/*")} == {"sweep/a/m", "sweep/b/m"}
    with pytest.raises(ConfigError, match="no leaf has the dataset 'c'"):
        expand(root, tmp_path / "o4", datasets="c")
    with pytest.raises(ConfigError, match="unknown mode 'sweeps'") as info:
        expand(root, tmp_path / "o5", modes="sweeps")
    assert "Did you mean 'sweep'" in info.value.suggestion


def test_single_file_root_in_experiment_mode(tmp_path):
    file = tmp_path / "seeds.yaml"
    file.write_text(ROOT_CFG.format(project=tmp_path).replace("seed: 0", "seed: [3, 4]"))
    trials = expand(file, tmp_path / "out", mode="experiment")
    assert [t.dir.relative_to(tmp_path / "out").as_posix() for t in trials] == ["seeds/trial_000", "seeds/trial_001"]
    assert trials[1].record()["mode"] == "experiment"
    with pytest.raises(ConfigError, match="in sweep mode the seed is a scalar"):
        expand(file, tmp_path / "out2")


def test_relative_project_becomes_absolute(tmp_path):
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS}, root=ROOT_CFG.format(project="../project"))
    trials = expand(root, tmp_path / "out")
    assert config_of(trials[0])["project"] == str(tmp_path / "project")


def test_parent_edit_propagates_and_numbers_stay(tmp_path):
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS})
    out = tmp_path / "out"
    first = expand(root, out)
    (root / "cfg.yaml").write_text((root / "cfg.yaml").read_text().replace("max_epochs: 1", "max_epochs: 7"))
    second = expand(root, out)
    assert [t.dir for t in second] == [t.dir for t in first]
    assert all(config_of(t)["trainer"]["max_epochs"] == 7 for t in second)


def test_added_value_appends_and_removed_value_is_kept_and_marked(tmp_path):
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS})
    out = tmp_path / "out"
    t0, t1 = expand(root, out)
    leaf = root / "sweep/data/m/cfg.yaml"
    leaf.write_text("sweep:\n  system::optimizer::lr: [0.001, 0.1, 0.01]\n")
    trials = expand(root, out)
    assert [(t.name, t.axes["system::optimizer::lr"]) for t in trials] == [
        ("trial_002", 0.001),
        ("trial_000", 0.1),
        ("trial_001", 0.01),
    ]
    before = {p: p.read_bytes() for p in t1.dir.iterdir() if p.name not in ("trial.yaml", ".trial.lock")}
    leaf.write_text("sweep:\n  system::optimizer::lr: [0.001, 0.1]\n")
    trials = expand(root, out)
    assert [t.name for t in trials] == ["trial_002", "trial_000"]
    assert t1.dir.is_dir() and t1.in_sweep is False
    assert {p: p.read_bytes() for p in t1.dir.iterdir() if p.name not in ("trial.yaml", ".trial.lock")} == before
    assert [t.name for t in load_trials(out)] == ["trial_000", "trial_001", "trial_002"]
    leaf.write_text(LR_AXIS)
    expand(root, out)
    assert t1.in_sweep is True, "a value that comes back takes its old trial back"


def test_unchanged_expansion_rewrites_nothing(tmp_path):
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS})
    out = tmp_path / "out"
    trials = expand(root, out)
    stamps = {p: p.stat().st_mtime_ns for t in trials for p in (t.config_path, t.record_path)}
    expand(root, out)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_done_trial_turns_stale_when_its_config_changes_and_keeps_what_ran(tmp_path):
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS})
    out = tmp_path / "out"
    trial = expand(root, out)[0]
    trial.mark_running()
    assert trial.status() is Status.RUNNING
    (trial.dir / "run.yaml").write_text("status: finished\n")
    (trial.dir / "batch_log.csv").write_text("epoch,mode,batch\n")
    trial.mark_done()
    assert trial.status() is Status.DONE
    ran = trial.config_path.read_text()
    old_hash = trial.record()["config_hash"]
    (root / "cfg.yaml").write_text((root / "cfg.yaml").read_text().replace("max_epochs: 1", "max_epochs: 3"))
    expand(root, out)
    assert trial.status() is Status.STALE
    assert trial.record()["status"] == "done"  # stale is derived from the hashes, never stored
    assert trial.record()["run_hash"] == old_hash != trial.record()["config_hash"]
    assert (trial.dir / f"config.{old_hash}.yaml").read_text() == ran
    assert config_of(trial)["trainer"]["max_epochs"] == 3
    (root / "cfg.yaml").write_text((root / "cfg.yaml").read_text().replace("max_epochs: 3", "max_epochs: 1"))
    expand(root, out)
    assert trial.status() is Status.DONE


def test_failed_trial_records_exit_code_and_error_tail(tmp_path):
    trial = expand(cascade(tmp_path, {"sweep/data/m": LR_AXIS}), tmp_path / "out")[0]
    trial.mark_running()
    trial.mark_failed(1, "\n".join(f"line {i}" for i in range(50)))
    record = trial.record()
    assert trial.status() is Status.FAILED and record["exit_code"] == 1
    assert record["error_tail"].splitlines() == [f"line {i}" for i in range(30, 50)]


def test_complete_needs_a_finished_run_and_a_batch_log(tmp_path):
    trial = expand(cascade(tmp_path, {"sweep/data/m": LR_AXIS}), tmp_path / "out")[0]
    assert not trial.complete()
    (trial.dir / "run.yaml").write_text("status: interrupted\n")
    (trial.dir / "batch_log.csv").write_text("epoch,mode,batch,step,loss\n")
    assert not trial.complete()
    (trial.dir / "run.yaml").write_text("status: finished\n")
    assert trial.complete()


def test_cli_expand_and_status(tmp_path, cli):
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS, "experiment/data/m": "seed: [0, 1]\n"})
    done = cli(["sweep", "expand", str(root)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"sweep/data/m/trial_001 +system::optimizer::lr=0.01 +pending", done.stdout)
    assert (tmp_path / "runs/sweeps/experiment/data/m/trial_001/config.yaml").is_file()
    status = cli(["sweep", "status", "--format", "json"], cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    records = json.loads(status.stdout)
    assert [r["axes"] for r in records] == [
        {"seed": 0},
        {"seed": 1},
        {"system::optimizer::lr": 0.1},
        {"system::optimizer::lr": 0.01},
    ]


def test_cli_rule_violation_exits_2_with_key_and_line(tmp_path, cli):
    root = cascade(tmp_path, {"experiment/data/m": "seed: [0, 1]\n" + LR_AXIS})
    done = cli(["sweep", "expand", str(root), "--out", str(tmp_path / "out")], cwd=tmp_path)
    assert done.returncode == 2
    assert "sweep::system::optimizer::lr: in experiment mode only the seed varies" in done.stderr
    assert f"{root}/experiment/data/m/cfg.yaml:3" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"system::optimizer::lr": 1e-5, "seed": 3}, id="numbers"),
        pytest.param({"system::optimizer::lr": "@vars::lr", "seed": 0}, id="reference-string"),
        pytest.param({"system::optimizer::lr": "a: b # c", "seed": 0}, id="string-needing-quotes"),
        pytest.param({"system::optimizer::lr": None, "seed": True}, id="null-and-bool"),
        pytest.param({"system::optimizer::lr": "x" * 100, "seed": 0}, id="long-string"),
        pytest.param({"system::optimizer::lr": [1, {"a": 2}], "seed": 0}, id="list-value"),
        pytest.param({"system::model::new::deep": 1, "seed": 0}, id="created-key"),
    ],
)
def test_fast_config_text_equals_safe_dump(tmp_path, values):

    base = load_config([str(Path(__file__).parent.parent / "configs" / "digits.yaml")]).data
    expected = yaml.safe_dump(with_values(base, values), sort_keys=False, default_flow_style=False, allow_unicode=True)
    assert ConfigText(base, list(values)).render(values) == expected


def test_status_written_by_any_runner_is_kept_and_turns_stale(tmp_path):
    """A runner that writes `status` itself (no run_hash, no lock) still gets `stale`; running is never reset."""
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS})
    out = tmp_path / "out"
    first, second = expand(root, out)
    (first.dir / "run.yaml").write_text("status: finished\n")
    (first.dir / "batch_log.csv").write_text("epoch,mode,batch\n")
    for trial, status in ((first, "done"), (second, "running")):
        record = yaml.safe_load(trial.record_path.read_text())
        trial.record_path.write_text(yaml.safe_dump({**record, "status": status}, sort_keys=False))
    expand(root, out)
    assert (first.status(), second.status()) == (Status.DONE, Status.RUNNING)
    (root / "cfg.yaml").write_text((root / "cfg.yaml").read_text().replace("max_epochs: 1", "max_epochs: 4"))
    expand(root, out)
    assert (first.status(), second.status()) == (Status.STALE, Status.RUNNING)


def test_two_expansions_at_once_make_each_trial_once(tmp_path):
    root = cascade(tmp_path, {"sweep/data/m": "sweep:\n  system::optimizer::lr: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]\n"})
    code = f"from lighter.sweep.expand import expand; expand({str(root)!r}, {str(tmp_path / 'out')!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    trials = load_trials(tmp_path / "out")
    assert [t.name for t in trials] == [f"trial_00{i}" for i in range(6)]
    assert [t.axes["system::optimizer::lr"] for t in trials] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert not [p for p in (tmp_path / "out/sweep/data/m").iterdir() if not p.name.startswith("trial_")]


def test_replace_and_delete_markers_merge_as_in_lighter_fit(tmp_path):
    root = cascade(
        tmp_path,
        {
            "sweep/data/m": "system:\n  =optimizer: {_target_: torch.optim.Adam, lr: 0.5}\n  ~model: null\n"
            "sweep:\n  system::optimizer::lr: [0.5, 0.05]\n"
        },
    )
    config = config_of(expand(root, tmp_path / "out")[1])
    assert config["system"] == {"optimizer": {"_target_": "torch.optim.Adam", "lr": 0.05}}


def test_digits_cascade_trial_runs_alone_from_any_directory(tmp_path, cli):
    """configs/cascade expands; one trial's config.yaml runs with `lighter fit --run-dir` from elsewhere."""
    out = tmp_path / "out"
    trials = expand(REPO / "configs" / "cascade", out)
    assert [t.leaf for t in trials] == ["experiment/digits/cnn/short"] * 3 + ["sweep/digits/cnn/short"] * 6
    assert trials[3].axes == {"system::optimizer::lr": 0.0003, "system::model::width": 8}
    trial = trials[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    quick = ["trainer::max_epochs=1", "trainer::limit_train_batches=2", "trainer::limit_val_batches=1"]
    done = cli(["fit", str(trial.config_path), "--run-dir", str(trial.dir), *quick], cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    assert yaml.safe_load((trial.dir / "run.yaml").read_text())["status"] == "finished"
    assert (trial.dir / "metrics.csv").is_file() and (trial.dir / "batch_log.csv").is_file()
    assert trial.complete()
    assert not list(elsewhere.iterdir()), "a trial writes only into its own folder"


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(["sweep", "expand"], "no sweep root given", id="no-root"),
        pytest.param(["sweep", "expand", "nope"], "the sweep root '", id="root-missing"),
        pytest.param(["sweep", "expand", "cascade", "--modes", "sweeps"], "Did you mean 'sweep'", id="bad-mode"),
        pytest.param(["sweep", "expand", "cascade", "--select", "zzz"], "matches no leaf", id="select-nothing"),
        pytest.param(["sweep", "status", "cascade", "--format", "xml"], "Formats: table, json", id="bad-format"),
        pytest.param(["sweep", "status", "nope"], "does not exist", id="status-missing-out"),
        pytest.param(["sweep", "results", "nope"], "does not exist", id="results-missing-out"),
    ],
)
def test_cli_mistakes_exit_2_with_a_hint(tmp_path, args, message, cli):
    cascade(tmp_path, {"sweep/data/m": LR_AXIS})
    done = cli(args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_cli_status_table_names_every_column_and_marks_removed_trials(tmp_path, cli):
    root = cascade(tmp_path, {"sweep/data/m": LR_AXIS})
    assert cli(["sweep", "expand", str(root)], cwd=tmp_path).returncode == 0
    (root / "sweep/data/m/cfg.yaml").write_text("sweep:\n  system::optimizer::lr: [0.1]\n")
    for command in ("expand", "status"):
        done = cli(["sweep", command, *([str(root)] if command == "expand" else [])], cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        header, rule = done.stdout.splitlines()[:2]
        assert header.split() == ["trial", "axes", "status", "note"]
        assert len(rule.split()) == 4
    assert re.search(r"trial_001 +system::optimizer::lr=0.01 +pending +no longer in the sweep", done.stdout)
