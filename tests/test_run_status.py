"""Status from one place (lighter.run.status): `sweep status`, the dashboard and `sweep run` agree on every trial.

The former defects, one test each: trials killed with their runner showed `running` forever; `sweep status` said
`done` after a trial's batch log was removed while `sweep run` ran it again; `trial.yaml` switched between
`run_hash` and `ran_hash`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import REPO, classifier_config, write_yaml

from lighter.dashboard.store import RunStore
from lighter.run.status import Status, alive, run_status, this_process
from lighter.sweep.attempt import plan
from lighter.sweep.execute import to_run
from lighter.sweep.trial import Trial

SLOW = """
import time

import pytorch_lightning as pl


class Slow(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(0.5)
"""


def sweep_status(cli, out: Path) -> dict[str, str]:
    """`lighter sweep status OUT --format json`, in this process: {trial name: status}."""
    done = cli(["sweep", "status", str(out), "--format", "json"])
    assert done.returncode == 0, done.stderr
    return {Path(r["dir"]).name: r["status"] for r in json.loads(done.stdout)}


def dashboard_status(out: Path) -> dict[str, str]:
    return {run.id.rsplit("/", 1)[-1]: run.status for run in RunStore(out).runs()}


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


# ---- liveness ---------------------------------------------------------------------------------------------------
def test_a_record_is_alive_only_while_its_own_process_runs():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = {"status": "running", "pid": child.pid, "host": os.uname().nodename}
        record["pid_started"] = round(psutil.Process(child.pid).create_time(), 2)
        assert alive(record) is True and run_status(record) == "running"
        assert alive({**record, "pid_started": record["pid_started"] - 60}) is False  # the pid reused by another
        assert alive({**record, "host": "another-node"}) is None  # cannot be told from here: `running` stands
        assert run_status({**record, "host": "another-node"}) == "running"
    finally:
        child.kill()
        child.wait()
    assert alive(record) is False and run_status(record) == "interrupted"
    assert alive(this_process()) is True


# ---- killed trials -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_trials_killed_with_their_runner_read_interrupted_in_status_dashboard_and_run(tmp_path, cli):
    config = classifier_config(tmp_path, epochs=100)
    (tmp_path / "project" / "slow.py").write_text(textwrap.dedent(SLOW))
    del config["trainer"]["default_root_dir"]
    config["trainer"]["callbacks"] = [{"_target_": "project.slow.Slow"}]
    config["seed"] = 0
    config["sweep"] = {"system::optimizer::lr": [0.1, 0.2]}
    root = write_yaml(tmp_path / "grid.yaml", config)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # `setsid lighter sweep run ... &` then `kill -KILL -- -PID`: the runner, its warm server and both trials die.
    runner = subprocess.Popen(
        [sys.executable, "-m", "lighter", "sweep", "run", str(root), "-o", str(out), "--jobs", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    trials = [out / "grid" / "trial_000", out / "grid" / "trial_001"]
    try:

        def started() -> bool:
            return all((t / "run.yaml").is_file() and Trial(t).record().get("status") == "running" for t in trials)

        wait_for(lambda: started() or runner.poll() is not None)
        assert runner.poll() is None, runner.communicate()[0].decode()
        pids = [Trial(t).record()["pid"] for t in trials]
    finally:
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()
    wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids))

    assert [Trial(t).record()["status"] for t in trials] == ["running", "running"]  # nobody lived to record it
    assert sweep_status(cli, out) == {"trial_000": "interrupted", "trial_001": "interrupted"}
    assert dashboard_status(out) == {"trial_000": "interrupted", "trial_001": "interrupted"}
    assert [run_status(yaml.safe_load((t / "run.yaml").read_text())) for t in trials] == ["interrupted"] * 2
    todo, complete = to_run(trials)
    assert (todo, complete) == (trials, 0)  # `sweep run` runs both again
    assert {plan(t) for t in trials} <= {"resume", "restart"}
    assert cli(["sweep", "status", str(out)]).stdout.rstrip().endswith("2 interrupted")


# ---- status and run agree -----------------------------------------------------------------------------------------
def complete_trial(trial: Path) -> Trial:
    """A trial as a finished run leaves it: done in trial.yaml, a finished run.yaml, a batch log."""
    write_yaml(trial / "config.yaml", {"seed": 0})
    write_yaml(
        trial / "trial.yaml", {"trial": trial.name, "status": "done", "config_hash": "a" * 16, "run_hash": "a" * 16}
    )
    write_yaml(trial / "run.yaml", {"status": "finished", "stage": "fit"})
    (trial / "batch_log.csv").write_text("epoch,mode,batch\n0,train,0\n")
    return Trial(trial)


def _remove(name: str):
    return lambda trial: (trial.dir / name).unlink()


def _run_status(status: str):
    return lambda trial: write_yaml(trial.dir / "run.yaml", {"status": status, "stage": "fit"})


def _config_changed(trial: Trial) -> None:
    trial.update(config_hash="b" * 16)  # what expansion writes when the trial's config changed


@pytest.mark.parametrize(
    ("change", "status", "action"),
    [
        pytest.param(lambda trial: None, "done", "complete", id="untouched"),
        pytest.param(_remove("batch_log.csv"), "pending", "restart", id="batch-log-removed"),
        pytest.param(_remove("run.yaml"), "pending", "restart", id="run-record-removed"),
        pytest.param(_run_status("failed"), "pending", "restart", id="run-recorded-failed"),
        pytest.param(_run_status("interrupted"), "pending", "restart", id="run-recorded-interrupted"),
        pytest.param(_config_changed, "stale", "complete", id="config-changed"),
    ],
)
def test_sweep_status_and_sweep_run_agree_after_a_trials_files_change(tmp_path, cli, change, status, action):
    trial = complete_trial(tmp_path / "out" / "grid" / "trial_000")
    change(trial)

    assert sweep_status(cli, tmp_path / "out") == {"trial_000": status}
    assert dashboard_status(tmp_path / "out") == {"trial_000": status}
    assert plan(trial.dir) == action
    assert to_run([trial.dir]) == (([], 1) if action == "complete" else ([trial.dir], 0))


# ---- one hash field -----------------------------------------------------------------------------------------------
def hashes(trial: Trial) -> dict[str, str]:
    return {key: value for key, value in trial.record().items() if "hash" in key}


def test_trial_yaml_keeps_one_run_hash_through_stale_and_rerun(tmp_path):
    trial = complete_trial(tmp_path / "trial_000")
    assert hashes(trial) == {"config_hash": "a" * 16, "run_hash": "a" * 16}

    _config_changed(trial)
    assert trial.status() is Status.STALE
    assert hashes(trial) == {"config_hash": "b" * 16, "run_hash": "a" * 16}
    assert trial.record()["status"] == "done"  # stale is derived, never stored

    trial.mark_running()  # rerun with the new config
    assert hashes(trial) == {"config_hash": "b" * 16, "run_hash": "b" * 16}
    trial.mark_done()
    assert trial.status() is Status.DONE and hashes(trial) == {"config_hash": "b" * 16, "run_hash": "b" * 16}


def test_an_older_record_with_ran_hash_reads_the_same_and_is_rewritten_with_run_hash(tmp_path):
    trial = complete_trial(tmp_path / "trial_000")
    write_yaml(trial.record_path, {"trial": "trial_000", "status": "stale", "config_hash": "b" * 16, "ran_hash": "a"})
    assert trial.status() is Status.STALE

    trial.update(in_sweep=True)

    assert hashes(trial) == {"config_hash": "b" * 16, "run_hash": "a"}
    assert trial.record()["status"] == "done" and trial.status() is Status.STALE
