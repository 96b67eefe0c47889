"""Interruption and resume through the real CLI: exit codes and `run.yaml` after SIGINT and SIGTERM, `lighter
resume` continuing in the same directory with continuous logs, and the same weights as a fit never stopped."""

from __future__ import annotations

import csv
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from conftest import CliResult, run_cli, run_in_process, write_yaml

PROJECT = textwrap.dedent(
    """\
    import os
    import signal

    import pytorch_lightning as pl
    import torch
    from torch.utils.data import TensorDataset


    def toy(n=48, seed=0):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 4, generator=g)
        return TensorDataset(x, (x.sum(1) > 0).long())


    class Net(torch.nn.Module):
        \"\"\"Dropout between two layers: a resumed fit must continue the same random stream.\"\"\"

        def __init__(self):
            super().__init__()
            layers = [torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 2)]
            self.body = torch.nn.Sequential(*layers)

        def forward(self, x):
            return self.body(x)


    class SignalAt(pl.Callback):
        \"\"\"Sends this process `name` (`times` in a row, then `then`) when training step `step` has finished.\"\"\"

        def __init__(self, step, name="SIGTERM", times=1, then=None):
            self.step, self.times = step, times
            self.signums = [getattr(signal, name)] * times + ([getattr(signal, then)] if then else [])

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == self.step:
                for signum in self.signums:
                    os.kill(os.getpid(), signum)
    """
)

CHECKPOINT = {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True}


def signal_at(step: int, name: str = "SIGTERM", times: int = 1, then: str | None = None) -> str:
    sender = {"_target_": "project.SignalAt", "step": step, "name": name, "times": times, "then": then}
    callbacks = [CHECKPOINT, sender]
    return "trainer::callbacks=" + yaml.safe_dump(callbacks, default_flow_style=True).strip()


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """A seeded, deterministic fit with shuffling and dropout: 6 steps an epoch, 2 epochs, a CSV logger."""
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text(PROJECT)
    data = {"_target_": "torch.utils.data.DataLoader", "dataset": {"_target_": "project.toy"}, "batch_size": 8}
    config = {
        "project": "./proj",
        "seed": 3,
        "trainer": {
            "_target_": "pytorch_lightning.Trainer",
            "max_epochs": 2,
            "deterministic": True,
            "accelerator": "cpu",
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": {"_target_": "pytorch_lightning.loggers.CSVLogger", "save_dir": "logs", "name": "toy"},
            "callbacks": [CHECKPOINT],
        },
        "system": {
            "_target_": "lighter.System",
            "model": {"_target_": "project.Net"},
            "criterion": {"_target_": "torch.nn.CrossEntropyLoss"},
            "optimizer": {
                "_target_": "torch.optim.SGD",
                "params": "$@system::model.parameters()",
                "lr": 0.1,
                "momentum": 0.9,
            },
            "dataloaders": {
                "train": {**data, "shuffle": True},
                "val": {**data, "dataset": {"_target_": "project.toy", "seed": 1}, "batch_size": 16},
            },
        },
    }
    return write_yaml(tmp_path / "config.yaml", config)


def record(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "run.yaml").read_text())


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def fit(experiment: Path, *overrides: str) -> CliResult | subprocess.CompletedProcess[str]:
    """`lighter fit` in this process; in its own process when a callback will signal it (the signal is the point)."""
    args = ["fit", str(experiment), *overrides]
    if any("project.SignalAt" in o for o in overrides):
        return run_cli(args, experiment.parent)
    return run_in_process(args, cwd=experiment.parent)


@pytest.mark.slow
def test_stopped_at_an_epoch_end_and_resumed_gives_the_same_weights_and_logs_as_a_straight_fit(experiment, cli):
    """The issue's bit-exact check: max_epochs=2, then `lighter resume RUN_DIR trainer::max_epochs=4`, against 4."""
    logs = experiment.parent / "logs" / "toy"
    assert fit(experiment, "trainer::max_epochs=4").returncode == 0
    assert fit(experiment).returncode == 0
    straight, resumed = logs / "version_0", logs / "version_1"
    done = cli(["resume", str(resumed), "trainer::max_epochs=4"], cwd=experiment.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = weights(straight / "checkpoints" / "last.ckpt"), weights(resumed / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the straight fit's"
    assert rows(resumed) == rows(straight)  # every row once, same steps, same values: the logs continue
    rec = record(resumed)
    assert rec["status"] == "finished"
    assert yaml.safe_load((resumed / "config.yaml").read_text())["trainer"]["max_epochs"] == 4
    assert yaml.safe_load((resumed / "config.before-resume-1.yaml").read_text())["trainer"]["max_epochs"] == 2
    [entry] = rec["resumes"]
    assert entry["command"] == f"lighter resume {resumed} trainer::max_epochs=4"
    assert entry["checkpoint"] == str(resumed / "checkpoints" / "last.ckpt")
    assert entry["after"]["status"] == "finished"
    assert sorted(p.name for p in logs.iterdir()) == ["version_0", "version_1"]  # no new directory

    # Stopped by SIGTERM mid-epoch (step 9: 3 of epoch 1's 6 batches done), then resumed: the same weights too.
    stopped = fit(experiment, "trainer::max_epochs=4", signal_at(9))
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    mid = logs / "version_2"
    only_checkpoint = "trainer::callbacks=" + yaml.safe_dump([CHECKPOINT], default_flow_style=True).strip()
    assert cli(["resume", str(mid), only_checkpoint], cwd=experiment.parent).returncode == 0
    c = weights(mid / "checkpoints" / "last.ckpt")
    assert all(torch.equal(a[k], c[k]) for k in a), "weights after a mid-epoch stop differ from the straight fit's"
    steps = [(r["step"], r["train/loss/step"]) for r in rows(mid) if r["train/loss/step"]]
    assert steps == [(r["step"], r["train/loss/step"]) for r in rows(straight) if r["train/loss/step"]]

    again = cli(["resume", str(resumed), "trainer::max_epochs=4"], cwd=experiment.parent)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "has already reached its end: it has trained 4 epochs, and trainer::max_epochs is 4" in again.stdout
    assert len(record(resumed)["resumes"]) == 1  # nothing ran, nothing recorded


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "code"), [pytest.param("SIGTERM", 143, id="SIGTERM"), pytest.param("SIGINT", 130, id="SIGINT")]
)
def test_a_signal_finishes_the_step_saves_a_checkpoint_records_it_and_resume_completes_the_run(
    experiment, name, code, cli
):
    run_dir = experiment.parent / "logs" / "toy" / "version_0"
    stopped = fit(experiment, signal_at(8, name))
    assert stopped.returncode == code, stopped.stderr[-3000:]
    rec = record(run_dir)
    assert rec["status"] == "interrupted"
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    assert rec["interrupted"] == {"signal": name, "epoch": 1, "step": 8, "checkpoint": str(saved)}
    assert rec["ended"] is not None
    assert f"lighter: stopped by {name}; checkpoint saved. Continue with: lighter resume {run_dir}" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    state = torch.load(saved, map_location="cpu", weights_only=True)
    assert state["global_step"] == 8  # the step in flight finished; none after it started
    assert {"optimizer_states", "loops", "lighter_rng", "callbacks"} <= state.keys()

    done = cli(["resume", str(run_dir)], cwd=experiment.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    rec = record(run_dir)
    assert rec["status"] == "finished" and "interrupted" not in rec
    assert rec["resumes"][0]["checkpoint"] == str(saved)
    assert rec["resumes"][0]["after"]["interrupted"]["signal"] == name
    steps = [int(r["step"]) for r in rows(run_dir) if r["train/loss/step"]]
    assert steps == list(range(12))  # no step twice, none missing


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_records_it(experiment):
    run_dir = experiment.parent / "logs" / "toy" / "version_0"
    stopped = fit(experiment, signal_at(3, "SIGINT", times=2))
    assert stopped.returncode == 130
    assert "second Ctrl-C: stopping now, without a checkpoint" in stopped.stderr
    rec = record(run_dir)
    assert rec["status"] == "interrupted"
    assert rec["interrupted"]["signal"] == "SIGINT" and rec["interrupted"]["checkpoint"] is None


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param("missing", "is not a run directory: it does not exist", id="missing"),
        pytest.param("empty", "is not a run directory: it holds no run.yaml", id="not-a-run"),
        pytest.param("no-checkpoint", "has no checkpoint to resume from: no .ckpt file in", id="no-checkpoint"),
    ],
)
def test_resume_of_what_cannot_be_resumed_names_what_is_missing(experiment, setup, message, cli):
    target = experiment.parent / "target"
    if setup == "empty":
        target.mkdir()
    if setup == "no-checkpoint":
        assert fit(experiment, "trainer::enable_checkpointing=false", "trainer::callbacks=[]").returncode == 0
        target = experiment.parent / "logs" / "toy" / "version_0"
    done = cli(["resume", str(target)], cwd=experiment.parent)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


SLURM_JOB = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "train",
    "SLURM_NTASKS": "1",
    "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_NODELIST": "localhost",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
}


@pytest.mark.slow
def test_slurm_auto_requeue_continues_the_same_run_directory(experiment, monkeypatch):
    """SIGUSR1 (`#SBATCH --signal=USR1@90`): Lightning saves hpc_ckpt_1.ckpt into the run directory and asks SLURM to
    requeue (no `scontrol` here: it logs that and goes on); SLURM's SIGTERM stops the job; the requeued job runs the
    same command with SLURM_RESTART_COUNT=1 and continues the same run directory."""
    for name, value in SLURM_JOB.items():
        monkeypatch.setenv(name, value)
    logs = experiment.parent / "logs" / "toy"
    run_dir = logs / "version_0"
    first = fit(experiment, signal_at(8, "SIGUSR1", then="SIGTERM"))
    assert first.returncode == 143, first.stderr[-3000:]
    assert (run_dir / "hpc_ckpt_1.ckpt").is_file()
    assert record(run_dir)["slurm"]["job_id"] == "4242"

    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    again = fit(experiment, signal_at(8, "SIGUSR1", then="SIGTERM"))  # the same command, as the requeued job runs it
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.name for p in logs.iterdir()) == ["version_0"]
    rec = record(run_dir)
    assert rec["status"] == "finished"
    assert rec["resumes"][0]["after"]["interrupted"]["signal"] == "SIGTERM"
    assert rec["resumes"][0]["checkpoint"] == str(run_dir / "checkpoints" / "interrupted.ckpt")
    steps = [int(r["step"]) for r in rows(run_dir) if r["train/loss/step"]]
    assert steps == list(range(12))
