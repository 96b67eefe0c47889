"""Sweeps on a real single-node SLURM cluster (tests/slurm_cluster.py): one started for the whole session.

Without `slurm-wlm` and `munge` (or without root) these tests skip on a laptop; under CI=true they fail instead,
since `make test` installs them. Trials are the tiny classifier, 1 epoch; each is a real sbatch job array task
running submitit's pickled call on the node.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import slurm_cluster
import torch
import yaml
from conftest import classifier_config, write_yaml

# One cluster for the session: under pytest-xdist (`make test`) every test here runs on the same worker.
pytestmark = pytest.mark.xdist_group("slurm")


@pytest.fixture(scope="session")
def cluster() -> Iterator[slurm_cluster.Cluster]:
    """The session's cluster; a skip where it cannot start, a failure under CI=true (where `make test` sets it up)."""
    problem = None
    if slurm_cluster.missing():
        problem = f"{', '.join(slurm_cluster.missing())} not found ({slurm_cluster.MISSING_HINT})"
    elif os.geteuid() != 0:
        problem = "the SLURM tests start slurmd, which needs root"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"SLURM tests cannot run under CI=true: {problem}")
        pytest.skip(problem)
    started = slurm_cluster.start()
    try:
        yield started
    finally:
        slurm_cluster.stop(started)


@pytest.fixture
def slurm(cluster: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[slurm_cluster.Cluster]:
    """The cluster, with SLURM_CONF and its `sacct` in this test's environment (submitit's commands inherit them);
    the jobs a test leaves are cancelled after it, so the next test finds the node free."""
    for key, value in cluster.env.items():
        monkeypatch.setenv(key, value)
    yield cluster
    if cluster.jobs():
        cluster.command("scancel", "--full", "--user", os.environ.get("USER") or "root", check=False)
        wait_for(lambda: not cluster.jobs(), what="the test's jobs to go")


STEPS = """
    import time
    from pathlib import Path

    import pytorch_lightning as pl


    class Steps(pl.Callback):
        \"\"\"Marks each training step (`<run dir>/step_N`), `seconds` after it: a test stops a trial midway.\"\"\"

        def __init__(self, seconds):
            self.seconds = seconds

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            time.sleep(self.seconds)
            (Path(trainer.default_root_dir) / f"step_{trainer.global_step}").touch()
"""


def sweep_file(tmp_path: Path, lrs: list[float], *, epochs: int = 1, seconds: float = 0.0, **launcher) -> Path:
    """One config file over learning rates, with a `launcher:` block; `seconds` per training step."""
    config = classifier_config(tmp_path, epochs=epochs)
    (tmp_path / "project" / "steps.py").write_text(textwrap.dedent(STEPS))
    trainer = config["trainer"]
    del trainer["default_root_dir"]
    trainer["enable_checkpointing"] = True
    trainer["callbacks"] = [
        {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True},
        {"_target_": "project.steps.Steps", "seconds": seconds},
    ]
    config["seed"] = 0
    config["sweep"] = {"system::optimizer::lr": lrs}
    config["launcher"] = {"partition": slurm_cluster.PARTITION, "time": 10, "cpus": 1, **launcher}
    return write_yaml(tmp_path / "grid.yaml", config)


def records(out: Path) -> dict[str, dict]:
    return {p.parent.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("grid/trial_*/trial.yaml"))}


def wait_for(condition, timeout: float = 600.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_sweep_runs_as_one_job_array_and_a_rerun_submits_nothing_again(slurm, tmp_path, cli):
    root = sweep_file(tmp_path, [0.1, 0.2, 0.3, 0.4])
    out = tmp_path / "out"
    argv = ["sweep", "run", str(root), "-o", str(out), "--executor", "slurm"]
    first = subprocess.Popen(
        [sys.executable, "-m", "lighter", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(records(out)) == 4 and all("slurm_job" in r for r in records(out).values()), what="sbatch")
        arrays = {r["slurm_job"].split("_")[0] for r in records(out).values()}
        tasks = sorted(r["slurm_job"] for r in records(out).values())

        shown = cli(["sweep", "status", str(out)])  # 2 CPUs, 1 per trial: 2 run, 2 wait

        assert shown.returncode == 0
        assert len(arrays) == 1
        assert tasks == [f"{min(arrays)}_{i}" for i in range(4)]
        states = [line.split()[2] for line in shown.stdout.splitlines() if line.startswith("grid/")]
        assert set(states) <= {"queued", "running"} and len(states) == 4, shown.stdout

        # A second runner while the first waits: it submits nothing and waits for the same tasks.
        second = cli(argv)

        assert second.returncode == 0, second.stdout + second.stderr
        assert "4 of them already on SLURM" in second.stdout, second.stdout
        assert "job array" not in second.stdout.replace("(SLURM job array)", "")  # no second sbatch
        assert second.stdout.splitlines()[-1] == "4 done"
        stdout, stderr = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, stdout + stderr
    assert "submitted 4 trials as job array" in stdout
    assert "Bypassing sacct error" not in stderr
    assert slurm.jobs() == []
    assert len(list((out / ".submitit").glob("*/*_submission.sh"))) == 1  # one sbatch, for the whole array
    for name, record in records(out).items():
        assert record["status"] == "done", (name, record)
        assert (out / "grid" / name / "batch_log.csv").is_file()

    third = cli(argv)

    assert third.returncode == 0
    assert third.stdout.splitlines() == [
        f"4 trials in {out}: 4 complete, 0 to run (SLURM job array)",
        "4 complete before",
    ]


@pytest.mark.parametrize(
    ("launcher", "env", "message"),
    [
        pytest.param(
            {},
            {"PATH": str(Path(sys.executable).parent)},
            "`sbatch` is not on the PATH: the slurm executor submits the trials through SLURM's sbatch",
            id="no-sbatch",
        ),
        pytest.param(
            {},
            {"SLURM_CONF": None},
            "sbatch cannot find a SLURM configuration (Could not establish a configuration source)\n"
            "  Submit from a machine of the cluster (its login node), or point SLURM_CONF at",
            id="no-configuration",
        ),
        pytest.param(
            {"partition": "gpu"},
            {},
            "launcher::partition: SLURM has no partition 'gpu' (Invalid partition name specified)\n"
            "  Partitions here: debug.",
            id="unknown-partition",
        ),
        pytest.param(
            {"cpus": 64},
            {},
            "launcher: SLURM refuses the resources asked for (cpus 64, time 10): More processors requested than "
            "permitted\n  Ask for no more than one node of partition 'debug' has",
            id="too-many-cpus",
        ),
        pytest.param(
            {"python": "/nonexistent/bin/python"},
            {},
            "ended before lighter started on the node: execve(): /nonexistent/bin/python: No such file or directory",
            id="fails-at-start",
        ),
    ],
)
def test_what_slurm_refuses_is_one_message_and_exit_2(slurm, tmp_path, monkeypatch, cli, launcher, env, message):
    root = sweep_file(tmp_path, [0.1], **launcher)
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key)
        else:
            monkeypatch.setenv(key, value)

    done = cli(["sweep", "run", str(root), "-o", str(tmp_path / "out"), "--executor", "slurm"])

    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr and "sbatch: error" not in done.stderr
    assert records(tmp_path / "out")["trial_000"]["status"] == "pending"  # nothing ran: the next run submits it


def weights(trial: Path) -> dict[str, torch.Tensor]:
    return torch.load(trial / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def test_a_requeued_trial_resumes_to_the_same_weights(slurm, tmp_path):
    """`scontrol requeue` (SIGTERM, then SLURM starts the task again) and `scancel --signal=USR1` (Lightning saves
    a checkpoint and requeues the task itself) midway through a trial: it resumes, and ends with the weights of
    the trial nobody stopped. The runner waits for the requeued tasks and exits 0."""
    root = sweep_file(tmp_path, [0.1], epochs=2, seconds=0.5)
    config = yaml.safe_load(root.read_text())
    config["sweep"] = {"trainer::log_every_n_steps": [1, 2, 3]}  # three trials that train alike
    config["system"]["dataloaders"]["train"]["dataset"]["n"] = 64  # 8 steps an epoch: stopped within epoch 0
    write_yaml(root, config)
    out = tmp_path / "out"
    runner = subprocess.Popen(
        [sys.executable, "-m", "lighter", "sweep", "run", str(root), "-o", str(out), "--executor", "slurm"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        trials = [out / "grid" / f"trial_{i:03d}" for i in range(3)]
        wait_for(lambda: (trials[0] / "step_2").exists(), what="trial_000's third step")
        tasks = [records(out)[t.name]["slurm_job"] for t in trials]
        requeued_at = time.monotonic()
        slurm.command("scontrol", "requeue", tasks[0])
        wait_for(lambda: (trials[1] / "step_2").exists(), what="trial_001's third step")
        slurm.command("scancel", "--signal=USR1", tasks[1])
        wait_for(lambda: records(out)["trial_000"].get("attempts") == 2, what="trial_000 to start again")
        print(f"requeue -> resume: {time.monotonic() - requeued_at:.1f} s")
        stdout, stderr = runner.communicate(timeout=600)
    finally:
        runner.kill()
    assert runner.returncode == 0, stdout + stderr
    assert stdout.splitlines()[-1] == "3 done", stdout
    assert "SLURM requeued job" in stdout
    for trial in trials[:2]:
        record = records(out)[trial.name]
        assert record["status"] == "done" and record["attempts"] == 2 and record["action"] == "resume", record
    expected = weights(trials[2])
    for trial in trials[:2]:
        got = weights(trial)
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[k], expected[k]) for k in expected), trial.name


BATCH_SCRIPT = """\
#!/bin/bash
#SBATCH --partition={partition} --time=10 --cpus-per-task=1 --open-mode=append --output={folder}/slurm-%j.out
srun {python} -m lighter fit {config}
"""


def test_lighter_fit_in_a_users_own_sbatch_script_requeues_and_resumes_to_the_same_weights(slurm, tmp_path):
    """`scancel --signal=USR1` on `srun lighter fit` from the user's script: Lightning saves a checkpoint and
    requeues the job; the job runs the same command again and lighter continues the run it recorded."""
    config = yaml.safe_load(sweep_file(tmp_path, [0.1], epochs=2, seconds=0.5).read_text())
    del config["sweep"], config["launcher"]
    config["system"]["dataloaders"]["train"]["dataset"]["n"] = 64
    config["trainer"]["logger"]["save_dir"] = "."  # the job's folder (--chdir): logs/version_N is the run
    jobs = {}
    for name in ("stopped", "reference"):
        folder = tmp_path / name
        write_yaml(folder / "config.yaml", config)
        script = BATCH_SCRIPT.format(
            partition=slurm_cluster.PARTITION, folder=folder, python=sys.executable, config=folder / "config.yaml"
        )
        (folder / "job.sh").write_text(script)
        submitted = slurm.command("sbatch", "--parsable", "--chdir", str(folder), str(folder / "job.sh"))
        jobs[name] = submitted.stdout.strip()

    wait_for(lambda: any((tmp_path / "stopped").rglob("step_2")), what="the third step")
    slurm.command("scancel", "--signal=USR1", jobs["stopped"])
    wait_for(lambda: not slurm.jobs(), what="both jobs to end")

    runs = {name: [p.parent for p in (tmp_path / name).rglob("run.yaml")] for name in jobs}
    assert [len(found) for found in runs.values()] == [1, 1], runs  # the requeued job continued its run
    record = yaml.safe_load((runs["stopped"][0] / "run.yaml").read_text())
    assert record["status"] == "finished" and record["resumes"], record
    log = (tmp_path / "stopped" / f"slurm-{jobs['stopped']}.out").read_text()
    assert "Requeued SLURM job" in log
    got, expected = (weights(runs[name][0]) for name in ("stopped", "reference"))
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_ctrl_c_keeps_the_tasks_or_cancels_them_and_sweep_cancel_cancels_them(slurm, tmp_path, cli):
    root = sweep_file(tmp_path, [0.1, 0.2], epochs=50, seconds=0.5)  # runs until cancelled
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "lighter", "sweep", "run", str(root), "-o", str(out), "--executor", "slurm"]

    def submit_then_ctrl_c(*flags: str) -> tuple[int, str]:
        runner = subprocess.Popen([*argv, *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: len(slurm.jobs()) == 2, what="two tasks on SLURM")
            runner.send_signal(signal.SIGINT)
            printed, _ = runner.communicate(timeout=60)
        finally:
            runner.kill()
        return runner.returncode, printed

    code, printed = submit_then_ctrl_c()

    assert code == 130, printed
    assert f"the submitted jobs keep running: `lighter sweep cancel {out}` cancels them" in printed
    assert len(slurm.jobs()) == 2
    tasks = sorted(r["slurm_job"] for r in records(out).values())

    cancelled = cli(["sweep", "cancel", str(out)])

    assert cancelled.returncode == 0, cancelled.stderr
    assert [line.split()[1] for line in cancelled.stdout.splitlines()[:2]] == tasks
    wait_for(lambda: not slurm.jobs(), what="the tasks to go")
    wait_for(lambda: {r["status"] for r in records(out).values()} == {"pending"}, what="both trials pending")

    code, printed = submit_then_ctrl_c("--cancel-on-stop")

    assert code == 130, printed
    assert "cancelled the SLURM tasks" in printed and "Ctrl-C cancels them" in printed
    wait_for(lambda: not slurm.jobs(), what="the tasks to go")
    assert cli(["sweep", "cancel", str(out)]).stdout.startswith("no trial under")
