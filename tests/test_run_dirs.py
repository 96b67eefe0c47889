"""One run, one directory: where lighter puts a run, how `run.yaml` records its end, and what it never overwrites.

Every run goes through the real CLI entry point (in this process; two concurrent fits in their own processes).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import classifier_config, write_yaml

from lighter.run.files import CONFIG_FILE, RUN_FILE


def fit_config(tmp_path: Path, **trainer) -> Path:
    """The classifier config with checkpoints on (last.ckpt kept), written to tmp_path/config.yaml."""
    config = classifier_config(tmp_path)
    config["seed"] = 0
    config["trainer"].update(
        enable_checkpointing=True,
        callbacks=[{"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True}],
        **trainer,
    )
    return write_yaml(tmp_path / "config.yaml", config)


def record(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / RUN_FILE).read_text())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_finished_run_records_status_times_and_keeps_checkpoints_in_its_directory(tmp_path, cli):
    done = cli(["fit", str(fit_config(tmp_path))], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "logs" / "version_0"
    rec = record(run_dir)
    assert rec["status"] == "finished"
    assert rec["started"] <= rec["ended"]
    assert rec["project"] == str(tmp_path / "project")  # the absolute folder imported
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]
    assert yaml.safe_load((run_dir / CONFIG_FILE).read_text())["trainer"]["max_epochs"] == 1

    # `lighter test RUN_DIR`: the recorded config and, with no best tracked (no monitor), last.ckpt.
    tested = cli(["test", str(run_dir)], cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr[-3000:]
    test_record = record(tmp_path / "logs" / "version_1")
    assert test_record["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert test_record["command"] == f"lighter test {run_dir}"
    assert test_record["status"] == "finished"


def test_failed_run_records_the_error_and_exits_1(tmp_path, cli):
    # Three classes of labels, two outputs: cross-entropy fails on the first batch.
    done = cli(["fit", str(fit_config(tmp_path)), "system::model::out_features=2"], cwd=tmp_path)
    assert done.returncode == 1
    rec = record(tmp_path / "logs" / "version_0")
    assert rec["status"] == "failed"
    assert rec["error"]["type"] == "IndexError"
    assert "out of bounds" in rec["error"]["message"]
    assert rec["ended"] is not None


def test_config_error_before_the_run_writes_no_directory(tmp_path, cli):
    done = cli(["fit", str(fit_config(tmp_path)), "system::optimizer::lr=[1"], cwd=tmp_path)
    assert done.returncode == 2
    assert not (tmp_path / "logs").exists()


def test_run_dir_option_names_the_directory_and_a_second_run_there_is_refused_losing_nothing(tmp_path, cli):
    config = str(fit_config(tmp_path))
    named = tmp_path / "my" / "run"
    first = cli(["fit", config, "--run-dir", str(named)], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert record(named)["status"] == "finished"
    assert (named / "metrics.csv").is_file() and (named / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "logs").exists()  # the CSV logger writes into the named directory
    before = snapshot(named)
    second = cli(["fit", config, f"--run-dir={named}", "trainer::max_epochs=2"], cwd=tmp_path)
    assert second.returncode == 2
    assert f"the run directory {named} already holds a recorded run (status: finished)" in second.stderr
    assert f"lighter resume {named}" in second.stderr
    assert "Traceback" not in second.stderr
    assert snapshot(named) == before  # not a byte changed, metrics.csv included


def test_a_refused_logger_version_loses_nothing(tmp_path, cli):
    config = str(fit_config(tmp_path))
    assert cli(["fit", config, "trainer::logger::version=0"], cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path / "logs")
    again = cli(["fit", config, "trainer::logger::version=0"], cwd=tmp_path)
    assert again.returncode == 2
    assert "trainer::logger::version: the run directory" in again.stderr
    assert snapshot(tmp_path / "logs") == before


def test_a_sweep_trial_directory_holding_only_its_config_is_free(tmp_path, cli):
    trial = tmp_path / "sweep" / "trial_000"
    write_yaml(trial / "trial.yaml", {"trial": "trial_000", "status": "pending"})
    config = fit_config(tmp_path)
    (trial / CONFIG_FILE).write_text(config.read_text())
    done = cli(["fit", str(trial / CONFIG_FILE), "--run-dir", str(trial)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert record(trial)["status"] == "finished"
    assert (trial / "trial.yaml").is_file()


def test_a_run_that_failed_before_writing_results_does_not_block_its_directory(tmp_path, cli):
    config = str(fit_config(tmp_path))
    named = tmp_path / "retry"
    failed = cli(["fit", config, "--run-dir", str(named), "system::model::out_features=2"], cwd=tmp_path)
    assert failed.returncode == 1
    again = cli(["fit", config, "--run-dir", str(named)], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    rec = record(named)
    assert rec["status"] == "finished"
    assert [a["status"] for a in rec["attempts"]] == ["failed"]


@pytest.mark.slow
def test_two_concurrent_fits_of_one_config_get_two_directories_and_two_checkpoints(tmp_path):
    config = str(fit_config(tmp_path, max_epochs=3))
    command = [sys.executable, "-m", "lighter", "fit", config]
    procs = [subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=240) == 0, proc.stderr.read()[-3000:]
    runs = sorted((tmp_path / "logs").iterdir())
    assert [r.name for r in runs] == ["version_0", "version_1"]
    for run_dir in runs:
        assert record(run_dir)["status"] == "finished"
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert len((run_dir / "metrics.csv").read_text().splitlines()) > 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["fit", "{run}"], "`lighter fit` takes config files; {run} is a directory", id="fit-run-dir"),
        pytest.param(["test", "{run}"], "is not a run directory: it holds no run.yaml", id="not-a-run"),
        pytest.param(
            ["test", "{config}", "args::test::ckpt_path=last"],
            "args::test::ckpt_path: ckpt_path 'last' means the last checkpoint of a fit that ran in this same process",
            id="ckpt-last",
        ),
        pytest.param(
            ["fit", "{config}", "args::fit::ckpt_path=best"],
            "args::fit::ckpt_path: 'best' names a checkpoint of this run",
            id="ckpt-best",
        ),
    ],
)
def test_what_a_run_directory_or_checkpoint_name_cannot_mean_is_a_config_error(tmp_path, args, message, cli):
    config = fit_config(tmp_path)
    run_dir = tmp_path / "somewhere"
    run_dir.mkdir()
    fill = {"run": str(run_dir), "config": str(config)}
    done = cli([a.format(**fill) for a in args], cwd=tmp_path)
    assert done.returncode == 2
    assert message.format(**fill) in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    "override",
    [pytest.param("trainer::fast_dev_run=true", id="fast_dev_run"), pytest.param(None, id="check")],
)
def test_fast_dev_run_and_check_write_no_run_directory(tmp_path, override, cli):
    config = str(fit_config(tmp_path))
    args = ["fit", config, override] if override else ["check", config]
    done = cli(args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "logs").exists()
    assert not (tmp_path / "runs").exists()
