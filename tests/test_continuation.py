"""One continuation decision (lighter.run.continuation): fresh, resume or restart, for `lighter resume`, SLURM requeue
and sweep attempts alike, with the checkpoints of configured `ModelCheckpoint(dirpath=...)` folders counted."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from lighter.errors import ConfigError
from lighter.run.continuation import Caller, decide
from lighter.run.status import this_process


def checkpoint(path: Path, run_dir: Path, step: int = 1) -> None:
    """A Lightning-shaped checkpoint, stamped with the run that wrote it as RunRecorder stamps it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "global_step": step, "lighter_run_dir": str(run_dir)}, path)


def run_dir(tmp_path: Path, status: str | None, **record) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.yaml").write_text("seed: 0\n")
    if status is not None:
        (folder / "run.yaml").write_text(yaml.safe_dump({"status": status, "stage": "fit", **record}))
    return folder


def own(folder: Path, tmp_path: Path) -> None:
    checkpoint(folder / "checkpoints" / "last.ckpt", folder)


def elsewhere(stamp: str):
    """A checkpoint in a configured dirpath outside the run, recorded in run.yaml; stamped with this run or another."""

    def put(folder: Path, tmp_path: Path) -> None:
        shared = tmp_path / "shared"
        checkpoint(shared / "epoch=0.ckpt", folder if stamp == "this" else tmp_path / "other-run")
        record = yaml.safe_load((folder / "run.yaml").read_text())
        (folder / "run.yaml").write_text(yaml.safe_dump({**record, "checkpoint_dirs": [str(shared)]}))

    return put


def nothing(folder: Path, tmp_path: Path) -> None:
    pass


@pytest.mark.parametrize(
    ("caller", "status", "put", "changed", "expected"),
    [
        pytest.param(Caller.SWEEP, None, nothing, False, "fresh", id="sweep-new"),
        pytest.param(Caller.SWEEP, "interrupted", own, False, "resume", id="sweep-interrupted"),
        pytest.param(Caller.SWEEP, "running", own, False, "resume", id="sweep-killed"),
        pytest.param(Caller.SWEEP, "interrupted", own, True, "restart", id="sweep-config-changed"),
        pytest.param(Caller.SWEEP, "failed", own, False, "restart", id="sweep-failed"),
        pytest.param(Caller.SWEEP, "interrupted", nothing, False, "restart", id="sweep-no-checkpoint"),
        pytest.param(Caller.SWEEP, "interrupted", elsewhere("this"), False, "resume", id="sweep-configured-dirpath"),
        pytest.param(Caller.SWEEP, "interrupted", elsewhere("other"), False, "restart", id="sweep-another-runs-file"),
        pytest.param(Caller.REQUEUE, "running", own, False, "resume", id="requeue"),
        pytest.param(Caller.REQUEUE, "running", elsewhere("this"), False, "resume", id="requeue-configured-dirpath"),
        pytest.param(Caller.REQUEUE, "running", nothing, False, "fresh", id="requeue-no-checkpoint"),
        pytest.param(Caller.RESUME, "finished", own, False, "resume", id="resume-finished"),
        pytest.param(Caller.RESUME, "interrupted", elsewhere("this"), False, "resume", id="resume-configured-dirpath"),
    ],
)
def test_one_decision_for_resume_requeue_and_sweep(tmp_path, caller, status, put, changed, expected):
    folder = run_dir(tmp_path, status)
    put(folder, tmp_path)

    decision = decide(folder, caller, config_changed=changed, owned=("config.yaml",))

    assert decision.action.value == expected
    if expected == "resume":
        assert decision.newest.is_file()


def test_the_newest_checkpoint_is_the_one_furthest_into_training(tmp_path):
    folder = run_dir(tmp_path, "interrupted")
    checkpoint(folder / "checkpoints" / "epoch=3.ckpt", folder, step=30)
    checkpoint(folder / "checkpoints" / "last.ckpt", folder, step=10)
    checkpoint(folder / "hpc_ckpt_1.ckpt", folder, step=20)

    assert decide(folder, Caller.RESUME).newest.name == "epoch=3.ckpt"


def test_leftovers_without_a_record_restart_a_sweep_trial(tmp_path):
    folder = run_dir(tmp_path, None)
    (folder / "metrics.csv").write_text("step\n")
    assert decide(folder, Caller.SWEEP, owned=("config.yaml",)).action.value == "restart"


@pytest.mark.parametrize(
    ("status", "record", "put", "message"),
    [
        pytest.param(None, {}, nothing, r"is not a run directory: it holds no run.yaml", id="no-record"),
        pytest.param("interrupted", {}, nothing, r"has no checkpoint to resume from: no .ckpt file in", id="none"),
        pytest.param("finished", {"stage": "test"}, own, r"was a `lighter test`; only a fit can be resumed", id="test"),
        pytest.param("running", this_process(), own, r"is still running \(process \d+ on ", id="live"),
    ],
)
def test_what_lighter_resume_refuses_is_named(tmp_path, status, record, put, message):
    folder = run_dir(tmp_path, status, **record)
    put(folder, tmp_path)
    with pytest.raises(ConfigError, match=message):
        decide(folder, Caller.RESUME)


def test_a_running_record_whose_process_is_gone_is_resumed(tmp_path):
    gone = {**this_process(), "pid_started": this_process()["pid_started"] - 100}  # this pid, another process
    folder = run_dir(tmp_path, "running", **gone)
    own(folder, tmp_path)
    assert decide(folder, Caller.RESUME).action.value == "resume"
