"""Running trials for real: runners killed midway and rerun, two runners at once, fail-fast, submitit's executor.

Trials are hand-made here (a `config.yaml` and a `trial.yaml`, as the expansion writes them), so these tests
exercise the runner alone; tests/test_sweep_cli.py runs whole cascades through `lighter sweep run`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import REPO, classifier_config, write_yaml

from lighter.errors import ConfigError
from lighter.sweep.execute import run_dirs
from lighter.sweep.local import LocalExecutor, device_groups

SLOW = """
    import time

    import pytorch_lightning as pl


    class Slow(pl.Callback):
        \"\"\"Makes every training batch last `seconds`, so a test can stop a trial midway.\"\"\"

        def __init__(self, seconds):
            self.seconds = seconds

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            time.sleep(self.seconds)
"""


def make_trials(
    tmp_path: Path,
    count: int,
    *,
    epochs: int = 2,
    slow: float = 0.0,
    slowed: tuple[int, ...] | None = None,
    broken: tuple[int, ...] = (),
):
    """`count` trials of the tiny classifier under tmp_path/out/sweep, as the expansion would write them: each
    training batch of the trials in `slowed` (all when None) lasts `slow` seconds."""
    out = tmp_path / "out"
    trials = []
    for i in range(count):
        config = classifier_config(tmp_path, epochs=epochs)
        (tmp_path / "project" / "slow.py").write_text(textwrap.dedent(SLOW))
        trainer = config["trainer"]
        del trainer["default_root_dir"]
        trainer["enable_checkpointing"] = True
        trainer["callbacks"] = [
            {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True},  # every epoch
            *([{"_target_": "project.slow.Slow", "seconds": slow}] if slow and i in (slowed or (i,)) else []),
        ]
        lr = 0.05 * (i + 1)
        config["system"]["optimizer"]["lr"] = lr
        if i in broken:
            config["system"]["model"]["in_features"] = 5  # the data have 4: fails in the first step
        trial = out / "sweep" / f"trial_{i:03d}"
        write_yaml(trial / "config.yaml", config)
        axes = {"system::optimizer::lr": lr}
        record = {"trial": trial.name, "leaf": "sweep", "mode": "sweep", "axes": axes, "status": "pending"}
        write_yaml(trial / "trial.yaml", {**record, "in_sweep": True})
        trials.append(trial)
    return out, trials


def status(trial: Path) -> dict:
    return yaml.safe_load((trial / "trial.yaml").read_text())


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below `folder` (the lock aside): its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def batch_keys(trial: Path) -> list[tuple[str, str, str]]:
    with (trial / "batch_log.csv").open() as f:
        return [(row["mode"], row["epoch"], row["batch"]) for row in csv.DictReader(f)]


def events(lines: list[str], word: str) -> list[str]:
    """The runner's lines of one kind ("start", "done", "FAILED"), which begin with the time of day."""
    return [line for line in lines if re.match(rf"\d\d:\d\d:\d\d  {word} ", line)]


def assert_done_once(trial: Path, epochs: int) -> None:
    """Done, with one batch-log row per batch of every epoch: no batch logged twice, none missing."""
    assert status(trial)["status"] == "done", status(trial)
    assert yaml.safe_load((trial / "run.yaml").read_text())["status"] == "finished"
    keys = batch_keys(trial)
    assert Counter(keys) == Counter(
        {(m, str(e), str(b)): 1 for e in range(epochs) for m in ("train", "val") for b in (0, 1)}
    )


def test_every_trial_runs_and_a_second_run_touches_nothing(tmp_path):
    out, trials = make_trials(tmp_path, 3)
    printed = io.StringIO()

    result = run_dirs(trials, out, jobs=2, stream=printed)

    assert result.exit_code == 0, printed.getvalue()
    for trial in trials:
        assert_done_once(trial, 2)
        assert status(trial)["attempts"] == 1
    lines = printed.getvalue().splitlines()
    assert lines[0] == f"3 trials in {out}: 0 complete, 3 to run, 2 at a time"
    assert len(events(lines, "start")) == 3 and len(events(lines, "done")) == 3
    assert lines[-1] == "3 done"
    before = snapshot(out)

    again = run_dirs(trials, out, jobs=2, stream=io.StringIO())

    assert again.exit_code == 0 and again.ended == [] and again.complete_before == 3
    assert snapshot(out) == before


RUNNER = """
import sys
from pathlib import Path
from lighter.errors import ConfigError
from lighter.sweep.execute import run_dirs
out = Path(sys.argv[1])
result = run_dirs(sorted((out / "sweep").iterdir()), out, jobs=int(sys.argv[2]))
sys.exit(result.exit_code)
"""


def start_runner(out: Path, jobs: int = 1) -> subprocess.Popen:
    """The runner in a process group of its own, as a shell starts it, so the test can signal the whole group."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(out), str(jobs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def wait_for(condition, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig", [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGKILL, id="SIGKILL")]
)
def test_a_runner_killed_midway_then_rerun_ends_every_trial_done_once(tmp_path, sig):
    epochs = 3
    # Only the trial the runner is stopped in is slow: it must still be running when the test kills.
    out, trials = make_trials(tmp_path, 3, epochs=epochs, slow=0.4, slowed=(1,))
    runner = start_runner(out)
    # Stop it when the first trial is complete and the second has saved a checkpoint and runs on.
    wait_for(lambda: status(trials[0])["status"] == "done" and (trials[1] / "checkpoints" / "last.ckpt").exists())
    finished_first = snapshot(trials[0])
    os.killpg(runner.pid, sig)
    output, _ = runner.communicate(timeout=120)
    if sig == signal.SIGTERM:
        assert runner.returncode == 143, output
        assert "stopped by SIGTERM; run the same command again to continue." in output
        assert status(trials[1])["status"] == "pending" and status(trials[1])["interrupted"] == "SIGTERM"
    else:
        assert runner.returncode == -signal.SIGKILL
        assert status(trials[1])["status"] == "running"  # nobody lived to record it; the free lock tells

    rerun = start_runner(out)
    output, _ = rerun.communicate(timeout=300)

    assert rerun.returncode == 0, output
    assert "1 complete, 2 to run" in output
    for trial in trials:
        assert_done_once(trial, epochs)
    assert snapshot(trials[0]) == finished_first
    assert status(trials[1])["action"] == "resume" and status(trials[1])["attempts"] == 2
    assert status(trials[2])["attempts"] == 1


@pytest.mark.slow
def test_two_runners_at_once_share_the_trials(tmp_path):
    out, trials = make_trials(tmp_path, 4, slow=0.1)

    runners = [start_runner(out), start_runner(out)]
    outputs = [r.communicate(timeout=300)[0] for r in runners]

    assert [r.returncode for r in runners] == [0, 0], outputs
    starts = Counter(line.split()[2] for text in outputs for line in events(text.splitlines(), "start"))
    assert starts == Counter({f"sweep/{t.name}": 1 for t in trials}), outputs  # each trial started by one runner
    for trial in trials:
        assert_done_once(trial, 2)
        assert status(trial)["attempts"] == 1


@pytest.mark.parametrize(
    ("fail_fast", "ran"), [pytest.param(True, 1, id="fail-fast"), pytest.param(False, 3, id="go-on")]
)
def test_a_failure_is_reported_when_it_happens_and_the_exit_code_says_so(tmp_path, fail_fast, ran):
    out, trials = make_trials(tmp_path, 3, broken=(0,))
    printed = io.StringIO()

    result = run_dirs(trials, out, fail_fast=fail_fast, stream=printed)

    assert result.exit_code == 1
    lines = printed.getvalue().splitlines()
    failed = lines.index(events(lines, "FAILED")[0])
    assert "sweep/trial_000  exit 1 after" in lines[failed] and "RuntimeError" in lines[failed]
    assert lines[failed + 1].strip() == f"its output: {trials[0] / 'output.log'}"
    assert len(events(lines, "start")) == ran
    if fail_fast:
        assert "--fail-fast: stopped at the first failure." in lines
        assert status(trials[1])["status"] == "pending"
    else:
        assert failed < next(i for i, line in enumerate(lines) if "sweep/trial_001" in line)  # before the others
        assert lines[-1] == "1 failed, 2 done"
    record = status(trials[0])
    assert record["status"] == "failed" and record["exit_code"] == 1
    assert "mat1 and mat2 shapes cannot be multiplied" in record["error_tail"]


@pytest.mark.slow
def test_the_slurm_executor_through_submitits_local_cluster(tmp_path):
    out, trials = make_trials(tmp_path, 1)  # each task is a fresh interpreter: one keeps the test short
    printed = io.StringIO()

    launcher = {"cluster": "local", "time": "0:10:00", "cpus": 1}
    result = run_dirs(trials, out, executor="slurm", launcher=launcher, stream=printed)

    assert result.exit_code == 0, printed.getvalue()
    for trial in trials:
        assert_done_once(trial, 2)
    assert "submitted 1 trial as job array" in printed.getvalue()
    assert any((out / ".submitit").rglob("*_submitted.pkl"))


def one_file_sweep(tmp_path: Path) -> Path:
    """A single config file as the root: the tiny classifier over two learning rates."""
    config = classifier_config(tmp_path)
    del config["trainer"]["default_root_dir"]
    config["seed"] = 0
    config["sweep"] = {"system::optimizer::lr": [0.1, 0.2]}
    return write_yaml(tmp_path / "grid.yaml", config)


def test_the_command_runs_a_one_file_sweep_and_a_second_run_skips_it(tmp_path, cli):
    root = one_file_sweep(tmp_path)

    first = cli(["sweep", "run", str(root), "-o", "out", "--jobs", "2"], cwd=tmp_path)

    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == f"2 trials in {tmp_path / 'out'}: 0 complete, 2 to run, 2 at a time"
    assert [line.split()[2] for line in events(lines, "done")] in (
        ["grid/trial_000", "grid/trial_001"],
        ["grid/trial_001", "grid/trial_000"],
    )
    for trial in sorted((tmp_path / "out" / "grid").iterdir()):
        assert status(trial)["status"] == "done" and (trial / "batch_log.csv").is_file()

    second = cli(["sweep", "run", str(root), "-o", "out"], cwd=tmp_path)

    assert second.returncode == 0
    assert second.stdout.splitlines() == [f"2 trials in {tmp_path / 'out'}: 2 complete, 0 to run", "2 complete before"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--jobs", "0"], "--jobs takes a whole number of at least 1, got '0'", id="jobs"),
        pytest.param(["--jobs", "many"], "--jobs takes a whole number of at least 1, got 'many'", id="jobs-word"),
        pytest.param(["--executor", "pbs"], "--executor: unknown executor 'pbs'", id="executor"),
        pytest.param(["--executor", "slurm", "--time", "soon"], "'soon' is not a time limit", id="time"),
    ],
)
def test_bad_options_are_config_errors(tmp_path, args, message, cli):
    root = one_file_sweep(tmp_path)

    done = cli(["sweep", "run", str(root), "-o", "out", *args], cwd=tmp_path)

    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


ENVIRONMENT = """
    import json
    import os
    from pathlib import Path

    import pytorch_lightning as pl
    import torch


    class Environment(pl.Callback):
        \"\"\"Writes what the trial's process was given: its GPUs and its CPU threads.\"\"\"

        def on_fit_start(self, trainer, pl_module):
            seen = {"gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "threads": torch.get_num_threads()}
            (Path(trainer.default_root_dir) / "environment.json").write_text(json.dumps(seen))
"""


@pytest.mark.parametrize(
    ("gpus", "per_trial", "expected"),
    [
        pytest.param([], 1, [None, None], id="no-gpus"),
        pytest.param(["0", "1", "2"], 1, ["0", "1"], id="one-each"),
        pytest.param(["0", "1", "2", "3"], 2, ["0,1", "2,3"], id="two-each"),
        pytest.param(["4", "7"], 1, ["4", "7"], id="as-visible"),
        pytest.param(["0"], 1, ["0"], id="fewer-gpus-than-jobs"),
    ],
)
def test_each_slot_gets_its_own_gpus(gpus, per_trial, expected):

    assert device_groups(2, per_trial, gpus) == expected


def test_two_trials_side_by_side_get_their_own_gpu_and_half_the_cores(tmp_path, monkeypatch):
    out, trials = make_trials(tmp_path, 2)
    (tmp_path / "project" / "environment.py").write_text(textwrap.dedent(ENVIRONMENT))
    for trial in trials:  # CPU trials: the device numbers are only handed over, never opened
        config = yaml.safe_load((trial / "config.yaml").read_text())
        config["trainer"]["callbacks"].append({"_target_": "project.environment.Environment"})
        write_yaml(trial / "config.yaml", config)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    result = run_dirs(trials, out, jobs=2, stream=io.StringIO())

    assert result.exit_code == 0
    seen = [json.loads((t / "environment.json").read_text()) for t in trials]
    assert sorted(s["gpus"] for s in seen) == ["3", "5"]
    assert {s["threads"] for s in seen} == {max(1, (os.cpu_count() or 1) // 2)}


def test_fewer_gpus_than_jobs_caps_the_jobs(monkeypatch):

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert LocalExecutor(8, gpus_per_trial=2).jobs == 1
    with pytest.raises(ConfigError, match=r"4 GPUs per trial, but this machine shows 3 \(0,1,2\)"):
        LocalExecutor(1, gpus_per_trial=4)
