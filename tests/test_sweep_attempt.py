"""One trial's bookkeeping: its lock, what a rerun does with what an earlier attempt left, the SLURM settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from lighter.errors import ConfigError
from lighter.sweep import attempt
from lighter.sweep.attempt import EXIT_BUSY, EXIT_COMPLETE, move_aside, plan, record, run_trial
from lighter.sweep.lock import TrialLock, is_locked
from lighter.sweep.slurm import make_executor, minutes, parameters

HOLD = """
import sys, time
from lighter.sweep.lock import TrialLock
lock = TrialLock(sys.argv[1])
assert lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_trial_lock_excludes_other_processes_until_its_holder_dies(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert is_locked(tmp_path)
        with TrialLock(tmp_path) as held:
            assert not held
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not is_locked(tmp_path)  # the kernel released it: no stale lock after a kill
    with TrialLock(tmp_path) as held:
        assert held
        assert "pid" in (tmp_path / ".lock").read_text()


CKPT = object()  # a real, readable checkpoint (a file of text is an unreadable one)


def write(trial: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        path = trial / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is CKPT:
            torch.save({"state_dict": {}, "global_step": 3, "epoch": 0}, path)
        else:
            path.write_text(content)
    return trial


SWEEP = {"config.yaml": "seed: 0\n", "trial.yaml": "trial: trial_000\nstatus: pending\n"}
# The config changed since the run started (expansion wrote a new one): a finished run is stale.
STALE = {"trial.yaml": "trial: trial_000\nstatus: stale\nconfig_hash: new\nran_hash: old\n"}
EDITED = {"trial.yaml": "trial: trial_000\nstatus: running\nconfig_hash: new\nrun_hash: old\n"}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param({}, "fit", id="new"),
        pytest.param({"run.yaml": "status: finished\n", "batch_log.csv": "epoch\n"}, "complete", id="complete"),
        pytest.param({"run.yaml": "status: finished\n"}, "restart", id="finished-without-batch-log"),
        pytest.param({"run.yaml": "status: running\n", "checkpoints/last.ckpt": CKPT}, "resume", id="killed"),
        pytest.param({"run.yaml": "status: interrupted\n", "checkpoints/last.ckpt": CKPT}, "resume", id="interrupted"),
        pytest.param(
            {"run.yaml": "status: interrupted\n", "checkpoints/last.ckpt": "x"}, "restart", id="unreadable-checkpoint"
        ),
        pytest.param({"run.yaml": "status: running\n"}, "restart", id="killed-before-a-checkpoint"),
        pytest.param({"run.yaml": "status: failed\n", "checkpoints/last.ckpt": "x"}, "restart", id="failed"),
        pytest.param({"metrics.csv": "step\n"}, "restart", id="unrecorded-leftovers"),
        pytest.param({**STALE, "run.yaml": "status: finished\n", "batch_log.csv": "e\n"}, "complete", id="stale"),
        pytest.param({**EDITED, "run.yaml": "status: running\n", "checkpoints/last.ckpt": "x"}, "restart", id="edited"),
    ],
)
def test_what_a_trial_needs_follows_its_run_record(tmp_path, files, expected):
    trial = write(tmp_path / "trial_000", {**SWEEP, **files})
    assert plan(trial) == expected


# Task 1 of a two-task SLURM job (DDP through srun), in the job's second start (after one requeue).
TASK_1 = {"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_JOB_ID": "7", "SLURM_RESTART_COUNT": "1"}


@pytest.mark.parametrize(
    ("tasks", "code"),
    [
        pytest.param("tasks: {attempt: '7.1', action: complete}\n", EXIT_COMPLETE, id="complete"),
        pytest.param("tasks: {attempt: '7.1', action: busy}\n", EXIT_BUSY, id="busy"),
    ],
)
def test_another_task_of_a_trial_does_what_task_0_recorded(tmp_path, monkeypatch, tasks, code):
    for key, value in TASK_1.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    trial = write(tmp_path / "trial_000", {**SWEEP, "trial.yaml": SWEEP["trial.yaml"] + tasks})

    assert run_trial(trial) == code
    assert not (trial / "output.log").exists()  # it ran nothing, and recorded nothing
    assert yaml.safe_load((trial / "trial.yaml").read_text())["status"] == "pending"


def test_another_task_whose_task_0_records_nothing_gives_up_with_a_message(tmp_path, monkeypatch, capsys):
    for key, value in TASK_1.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setattr(attempt, "FOLLOW_TIMEOUT_S", 0.5)
    before_requeue = "tasks: {attempt: '7.0', action: fit}\n"  # task 0's record of the job's first start
    trial = write(tmp_path / "trial_000", {**SWEEP, "trial.yaml": SWEEP["trial.yaml"] + before_requeue})

    assert run_trial(trial) == 1
    assert "lighter: task 0 of trial_000 recorded nothing for this attempt in 0.5 s" in capsys.readouterr().err


def test_a_stale_trial_reruns_when_asked(tmp_path):
    files = {**SWEEP, **STALE, "run.yaml": "status: finished\n", "batch_log.csv": "e\n"}
    assert plan(write(tmp_path / "t", files), rerun_stale=True) == "restart"


def test_a_restart_moves_the_earlier_attempt_aside_and_deletes_nothing(tmp_path):
    earlier = {"run.yaml": "status: failed\n", "metrics.csv": "a\n", "checkpoints/last.ckpt": "x", "output.log": "e"}
    trial = write(tmp_path / "trial_000", {**SWEEP, **earlier})

    first = move_aside(trial)
    write(trial, {"run.yaml": "status: failed\n"})
    second = move_aside(trial)

    assert (first.name, second.name) == ("001", "002")
    assert sorted(p.name for p in trial.iterdir()) == ["attempts", "config.yaml", "trial.yaml"]
    assert (first / "checkpoints" / "last.ckpt").read_text() == "x"
    assert (first / "config.yaml").read_text() == SWEEP["config.yaml"]  # the config that attempt ran
    assert (trial / "config.yaml").read_text() == SWEEP["config.yaml"]
    assert (second / "run.yaml").is_file()


BATCH_LOG = {"_target_": "lighter.callbacks.BatchLog", "flush_seconds": 1}
CHECKPOINT = {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True}


@pytest.mark.parametrize(
    ("callbacks", "expected"),
    [
        pytest.param(None, ["BatchLog"], id="null"),
        pytest.param([CHECKPOINT], ["BatchLog", "ModelCheckpoint"], id="before-the-checkpoint"),
        pytest.param(CHECKPOINT, ["BatchLog", "ModelCheckpoint"], id="a-single-callback"),
        pytest.param("$[]", ["BatchLog"], id="an-expression"),
        pytest.param([CHECKPOINT, BATCH_LOG], ["BatchLog", "ModelCheckpoint"], id="has-one-already"),
    ],
)
def test_a_trial_gets_one_batch_log_as_a_callback_object_before_its_checkpoints(tmp_path, callbacks, expected):
    from conftest import classifier_config

    from lighter.callbacks import BatchLog
    from lighter.engine.stage import add_callbacks, instantiate, prepare

    config = classifier_config(tmp_path)
    config["trainer"]["callbacks"] = callbacks
    config["trainer"]["enable_checkpointing"] = True
    experiment = instantiate(prepare("fit", [str(write(tmp_path, {"c.yaml": yaml.safe_dump(config)}) / "c.yaml")]))
    own = BatchLog()

    add_callbacks(experiment, [own])

    names = [type(cb).__name__ for cb in experiment.trainer.callbacks if type(cb).__name__ in expected]
    assert names == expected
    batch_logs = [cb for cb in experiment.trainer.callbacks if isinstance(cb, BatchLog)]
    configured = isinstance(callbacks, list) and BATCH_LOG in callbacks
    assert len(batch_logs) == 1 and (batch_logs[0] is own) == (not configured)  # the config's own stays


@pytest.mark.parametrize(
    ("code", "run_status", "status", "fields"),
    [
        pytest.param(143, "interrupted", "interrupted", {"status": "pending", "interrupted": "SIGTERM"}, id="sigterm"),
        pytest.param(-9, "running", "failed", {"status": "failed", "exit_code": -9}, id="sigkill"),
        pytest.param(1, "failed", "failed", {"status": "failed", "exit_code": 1}, id="error"),
        pytest.param(0, "finished", "failed", {"status": "failed", "exit_code": 1}, id="finished-without-batch-log"),
    ],
)
def test_how_a_trial_process_ended_is_recorded(tmp_path, code, run_status, status, fields):
    trial = write(tmp_path / "t", {**SWEEP, "run.yaml": f"status: {run_status}\ninterrupted: {{signal: SIGTERM}}\n"})

    assert record(trial, code, "Traceback\nValueError: boom") == status

    saved = yaml.safe_load((trial / "trial.yaml").read_text())
    assert fields.items() <= saved.items()
    if status == "failed":
        assert saved["error_tail"].startswith("Traceback\nValueError: boom")
    if code == -9:
        assert saved["error_tail"].endswith("killed by SIGKILL")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(90, 90, id="int"),
        pytest.param("90", 90, id="str"),
        pytest.param("1:30:00", 90, id="h:m:s"),
        pytest.param("30:30", 31, id="m:s"),
        pytest.param("1-00:00:00", 1440, id="days"),
        pytest.param("2-3", 2 * 1440 + 180, id="days-hours"),
    ],
)
def test_time_limits_in_slurms_forms(value, expected):
    assert minutes(value, "launcher::time") == expected


@pytest.mark.parametrize("value", ["soon", "0", -5, "1:2:3:4", True])
def test_a_bad_time_limit_names_its_key(value):
    with pytest.raises(ConfigError, match=r"launcher::time.*is not a time limit"):
        minutes(value, "launcher::time")


def test_launcher_short_names_become_submitits():
    launcher = {"partition": "gpu", "time": "2:00:00", "gpus": 1, "cluster": "local", "mem_gb": 8, "poll_s": 0.5}
    params, own = parameters(launcher)
    assert params == {"slurm_partition": "gpu", "timeout_min": 120, "gpus_per_node": 1, "mem_gb": 8}
    assert own == {"cluster": "local", "poll_s": 0.5}


@pytest.mark.parametrize("value", ["often", 0, -1, True])
def test_a_bad_poll_interval_names_its_key(value):
    with pytest.raises(ConfigError, match=r"launcher::poll_s.*is not a number of seconds"):
        parameters({"partition": "gpu", "poll_s": value})


def test_a_parameter_submitit_does_not_know_is_a_config_error(tmp_path):

    with pytest.raises(ConfigError, match="launcher: submitit refuses the launcher parameters") as err:
        make_executor(tmp_path, {"cluster": "local", "partitions": "gpu"})
    assert isinstance(err.value.__cause__, NameError)
