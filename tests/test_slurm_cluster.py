"""Sweeps on a real single-node SLURM cluster (tests/slurm_cluster.py): conftest's `cluster`, one for the session.

Without `slurm-wlm` and `munge` (or without root) these tests skip on a laptop; under CI=true they fail instead,
since `make test` installs them. Trials are the tiny classifier; each is a real sbatch job array task running
submitit's pickled call on the node. Nothing waits on fixed sleeps: a trial to be stopped midway pauses after a
step until SLURM's signal reaches it (`Pause` below). Independent jobs run at once (the node offers 8 CPUs), and
the time-limit trial, which waits for SLURM's periodic time-limit check (every 30 s), is submitted by the first
test and checked by the last.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import slurm_cluster
import torch
import yaml
from conftest import classifier_config, write_yaml
from slurm_cluster import wait_for

# One cluster for the session: under pytest-xdist (`make test`) every SLURM test runs on the same worker.
pytestmark = pytest.mark.xdist_group("slurm")

PAUSE = """
    import time
    from pathlib import Path

    import pytorch_lightning as pl


    class Pause(pl.Callback):
        \"\"\"After training step `step`, waits until `<folder>/<run dir name>` exists or SIGTERM came: a test stops the
        trial meanwhile. `<folder>/<run dir name>.paused` says it waits.\"\"\"

        def __init__(self, folder, step=3):
            self.folder, self.step = Path(folder), step

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step != self.step:
                return
            name = Path(trainer.default_root_dir).name
            (self.folder / f"{name}.paused").touch()
            while not (self.folder / name).exists() and not trainer.received_sigterm:
                time.sleep(0.05)
"""


def sweep_file(tmp_path: Path, lrs: list[float], *, epochs: int = 1, steps: int = 2, **launcher) -> Path:
    """One config file over learning rates, with a `launcher:` block; `steps` training steps an epoch. Each trial
    pauses after its third step until SIGTERM or `<tmp_path>/go/<trial>` (see `go`)."""
    config = classifier_config(tmp_path, epochs=epochs)
    (tmp_path / "project" / "pause.py").write_text(textwrap.dedent(PAUSE))
    (tmp_path / "go").mkdir(exist_ok=True)
    trainer = config["trainer"]
    del trainer["default_root_dir"]
    trainer["enable_checkpointing"] = True
    trainer["callbacks"] = [
        {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True},
        {"_target_": "project.pause.Pause", "folder": str(tmp_path / "go")},
    ]
    config["system"]["dataloaders"]["train"]["dataset"]["n"] = 8 * steps  # batches of 8
    config["seed"] = 0
    config["sweep"] = {"system::optimizer::lr": lrs}
    config["launcher"] = {"partition": slurm_cluster.PARTITION, "time": 10, "cpus": 1, "poll_s": 0.5, **launcher}
    return write_yaml(tmp_path / "grid.yaml", config)


def go(tmp_path: Path, *trials: str) -> None:
    """Let these trials run through their pause (a trial nobody stops: the reference)."""
    for name in trials:
        (tmp_path / "go" / name).touch()


def paused(tmp_path: Path, name: str) -> bool:
    return (tmp_path / "go" / f"{name}.paused").exists()


def records(out: Path) -> dict[str, dict]:
    return {p.parent.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("grid/trial_*/trial.yaml"))}


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def assert_same_weights(run_dir: Path, reference: Path) -> None:
    got, expected = weights(run_dir), weights(reference)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected), run_dir


def sweep_run(out: Path, root: Path, env: dict[str, str] | None = None, *flags: str) -> subprocess.Popen:
    """`lighter sweep run ROOT -o OUT --executor slurm` in its own process (a test signals or waits for it)."""
    argv = [sys.executable, "-m", "lighter", "sweep", "run", str(root), "-o", str(out), "--executor", "slurm"]
    return subprocess.Popen(
        [*argv, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or os.environ.copy()
    )


@dataclass
class Submitted:
    """A sweep runner started by one test and checked by a later one."""

    tmp_path: Path
    out: Path
    runner: subprocess.Popen


@pytest.fixture(scope="module")
def near_time_limit(cluster: slurm_cluster.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Submitted]:
    """Two trials with a 2-minute time limit and SIGUSR1 40 s before it; trial_000 pauses until SLURM's signal,
    trial_001 runs through (the reference). SLURM checks time limits every 30 s, so the signal may come up to 60 s
    early (sbatch(1)): here 120 - 40 - 30 = 50 to 80 s after the task started. That leaves a loaded machine 50 s to
    start the trial and install Lightning's handler before the signal comes (SIGUSR1's default action would end
    the process), and the requeued attempt, which pauses no more, 50 s to end before its own signal could come."""
    tmp_path = tmp_path_factory.mktemp("time-limit")
    root = sweep_file(tmp_path, [0.1], epochs=2, steps=8, time=2, signal_delay_s=40)
    config = yaml.safe_load(root.read_text())
    config["sweep"] = {"trainer::log_every_n_steps": [1, 2]}  # two trials that train alike
    write_yaml(root, config)
    go(tmp_path, "trial_001")
    out = tmp_path / "out"
    runner = sweep_run(out, root, {**os.environ, **cluster.env})
    try:
        wait_for(lambda: all("slurm_job" in r for r in records(out).values()) and records(out), what="sbatch")
        cluster.kept.add(records(out)["trial_000"]["slurm_job"].split("_")[0])
        yield Submitted(tmp_path, out, runner)
    finally:
        runner.kill()
        runner.communicate()


@pytest.fixture(scope="module")
def two_tasks(cluster: slurm_cluster.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Submitted]:
    """One trial of two SLURM tasks (`tasks_per_node: 2`): CPU DDP (gloo) through submitit's srun, 2 epochs of
    2 steps on each of the two processes."""
    tmp_path = tmp_path_factory.mktemp("two-tasks")
    root = sweep_file(tmp_path, [0.1], epochs=2, steps=4, tasks_per_node=2)
    config = yaml.safe_load(root.read_text())
    config["trainer"].update(devices=2, strategy="ddp")
    write_yaml(root, config)
    go(tmp_path, "trial_000")
    out = tmp_path / "out"
    runner = sweep_run(out, root, {**os.environ, **cluster.env})
    try:
        wait_for(lambda: "slurm_job" in records(out).get("trial_000", {}), what="sbatch")
        cluster.kept.add(records(out)["trial_000"]["slurm_job"].split("_")[0])
        yield Submitted(tmp_path, out, runner)
    finally:
        runner.kill()
        runner.communicate()


@pytest.mark.usefixtures("near_time_limit", "two_tasks")  # they run while the others do (the node has 8 CPUs)
def test_a_sweep_runs_as_one_job_array_and_a_rerun_submits_nothing_again(slurm, tmp_path, cli):
    root = sweep_file(tmp_path, [0.1, 0.2, 0.3, 0.4], steps=4)
    out = tmp_path / "out"
    argv = ["sweep", "run", str(root), "-o", str(out), "--executor", "slurm"]
    began = time.monotonic()
    first = sweep_run(out, root)
    try:
        wait_for(lambda: len(records(out)) == 4 and all("slurm_job" in r for r in records(out).values()), what="sbatch")
        submitted = time.monotonic()
        arrays = {r["slurm_job"].split("_")[0] for r in records(out).values()}
        tasks = sorted(r["slurm_job"] for r in records(out).values())

        shown = cli(["sweep", "status", str(out)])  # each trial pauses after its third step

        assert shown.returncode == 0
        assert len(arrays) == 1
        assert tasks == [f"{min(arrays)}_{i}" for i in range(4)]
        states = [line.split()[2] for line in shown.stdout.splitlines() if line.startswith("grid/")]
        assert set(states) <= {"queued", "running"} and len(states) == 4, shown.stdout
        wait_for(lambda: "running" in {r["status"] for r in records(out).values()}, what="a trial to start")
        print(
            f"\nsweep run -> submitted: {submitted - began:.1f} s, -> a trial started: {time.monotonic() - began:.1f} s"
        )

        # A second runner while the first waits: it submits nothing and waits for the same tasks.
        second = sweep_run(out, root)
        headline = second.stdout.readline()
        go(tmp_path, *records(out))
        printed, errors = second.communicate(timeout=600)

        assert second.returncode == 0, headline + printed + errors
        assert "4 of them already on SLURM" in headline, headline
        assert "job array" not in printed  # no second sbatch
        assert printed.splitlines()[-1] == "4 done"
        stdout, stderr = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, stdout + stderr
    assert "submitted 4 trials as job array" in stdout
    assert "Bypassing sacct error" not in stderr
    assert not set(tasks) & set(slurm.jobs())
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


BATCH_SCRIPT = """\
#!/bin/bash
#SBATCH --partition={partition} --time=10 --cpus-per-task=1 --open-mode=append --output={folder}/slurm-%j.out
srun {python} -m lighter fit {config}
"""


def own_sbatch_job(slurm: slurm_cluster.Cluster, folder: Path, config: dict) -> str:
    """`srun lighter fit` from a user's own batch script; its run is logs/version_0 in `folder` (--chdir). It pauses
    as a trial does, its marker in `folder/go`."""
    trainer = config["trainer"]
    pause = {**trainer["callbacks"][1], "folder": str(folder / "go")}
    logger = {**trainer["logger"], "save_dir": "."}
    write_yaml(
        folder / "config.yaml",
        {**config, "trainer": {**trainer, "callbacks": [trainer["callbacks"][0], pause], "logger": logger}},
    )
    script = BATCH_SCRIPT.format(
        partition=slurm_cluster.PARTITION, folder=folder, python=sys.executable, config=folder / "config.yaml"
    )
    (folder / "job.sh").write_text(script)
    (folder / "go").mkdir()
    return slurm.command("sbatch", "--parsable", "--chdir", str(folder), str(folder / "job.sh")).stdout.strip()


def test_requeued_trials_and_a_users_own_sbatch_job_resume_to_the_same_weights(slurm, tmp_path, cli):
    """Midway through epoch 0, `scontrol requeue` (SIGTERM, then SLURM starts the task again) stops trial_000 and
    `scancel --signal=USR1` (Lightning saves a checkpoint and requeues the task itself) stops trial_001; trial_002
    runs through. Both resume and end with trial_002's weights; the runner waits for the requeued tasks and exits 0.
    At the same time, the same USR1 on `srun lighter fit` from a user's own sbatch script (the same training):
    Lightning requeues the job, which runs the same command again, and lighter continues the run it recorded."""
    root = sweep_file(tmp_path, [0.1], epochs=2, steps=8)
    config = yaml.safe_load(root.read_text())
    config["sweep"] = {"trainer::log_every_n_steps": [1, 2, 3]}  # three trials that train alike
    write_yaml(root, config)
    go(tmp_path, "trial_002")  # the reference, which nobody stops
    del config["sweep"], config["launcher"]
    out, own = tmp_path / "out", tmp_path / "own"
    runner = sweep_run(out, root)
    job = own_sbatch_job(slurm, own, config)
    try:
        trials = [out / "grid" / f"trial_{i:03d}" for i in range(3)]
        wait_for(lambda: paused(tmp_path, "trial_000") and paused(tmp_path, "trial_001"), what="two paused trials")
        tasks = [records(out)[t.name]["slurm_job"] for t in trials]
        requeued_at = time.monotonic()
        slurm.command("scontrol", "requeue", tasks[0])
        slurm.command("scancel", "--signal=USR1", tasks[1])
        wait_for(lambda: (own / "go" / "version_0.paused").exists(), what="the user's job to pause")
        slurm.command("scancel", "--signal=USR1", job)
        wait_for(lambda: records(out)["trial_000"].get("interrupted"), what="trial_000 to stop")
        # Its records say interrupted; SLURM holds its task again, and `sweep status` says so.
        shown = cli(["sweep", "status", str(out)])
        wait_for(lambda: records(out)["trial_000"].get("attempts") == 2, what="trial_000 to start again")
        print(f"\nrequeue -> resume: {time.monotonic() - requeued_at:.1f} s")
        stdout, stderr = runner.communicate(timeout=600)
    finally:
        runner.kill()
    state = next(line.split()[2] for line in shown.stdout.splitlines() if line.startswith("grid/trial_000"))
    assert state in ("queued", "running"), shown.stdout
    assert runner.returncode == 0, stdout + stderr
    assert stdout.splitlines()[-1] == "3 done", stdout
    assert "SLURM requeued job" in stdout
    for trial in trials[:2]:
        record = records(out)[trial.name]
        assert record["status"] == "done" and record["attempts"] == 2 and record["action"] == "resume", record
        assert_same_weights(trial, trials[2])
        assert "Bypassing signal" not in (trial / "output.log").read_text()  # submitit's, on SIGCONT

    wait_for(lambda: job not in slurm.jobs(), what="the user's job to end")
    runs = [p.parent for p in own.rglob("run.yaml")]
    assert len(runs) == 1, runs  # the requeued job continued its run
    record = yaml.safe_load((runs[0] / "run.yaml").read_text())
    assert record["status"] == "finished" and record["resumes"], record
    assert "Requeued SLURM job" in (own / f"slurm-{job}.out").read_text()
    assert_same_weights(runs[0], trials[2])


def test_ctrl_c_keeps_the_tasks_or_cancels_them_and_sweep_cancel_cancels_them(slurm, tmp_path, cli):
    """One task at a time (`array_parallelism: 1`): trial_000 runs (it would pause after its third step until
    SIGTERM) and trial_001 waits in SLURM's queue."""
    out = tmp_path / "out"
    tasks = lambda: {name: r["slurm_job"] for name, r in records(out).items()}  # noqa: E731

    def submit_then_ctrl_c(root: Path, out: Path, *flags: str) -> tuple[int, str]:
        runner = sweep_run(out, root, None, *flags)
        try:
            wait_for(lambda: records(out).get("trial_000", {}).get("status") == "running", what="trial_000 to run")
            runner.send_signal(signal.SIGINT)
            printed, errors = runner.communicate(timeout=60)
        finally:
            runner.kill()
        return runner.returncode, printed + errors

    def shown() -> dict[str, str]:
        listed = cli(["sweep", "status", str(out)]).stdout.splitlines()
        return {line.split()[0]: line.split()[2] for line in listed if line.startswith("grid/")}

    code, printed = submit_then_ctrl_c(sweep_file(tmp_path, [0.1, 0.2], steps=4, array_parallelism=1), out)

    assert code == 130, printed
    assert f"the submitted jobs keep running: `lighter sweep cancel {out}` cancels them" in printed
    assert set(tasks().values()) <= set(slurm.jobs())
    assert shown() == {"grid/trial_000": "running", "grid/trial_001": "queued"}

    slurm.command("scancel", tasks()["trial_001"])  # not through lighter: its record still says queued
    wait_for(lambda: tasks()["trial_001"] not in slurm.jobs(), what="trial_001's task to go")

    assert records(out)["trial_001"]["status"] == "queued"
    assert shown() == {"grid/trial_000": "running", "grid/trial_001": "pending"}  # squeue's word, not the record's

    cancelled = cli(["sweep", "cancel", str(out)])

    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.splitlines()[0] == f"cancelled {tasks()['trial_000']}  grid/trial_000"
    wait_for(lambda: not set(tasks().values()) & set(slurm.jobs()), what="the tasks to go")
    wait_for(lambda: shown() == {"grid/trial_000": "interrupted", "grid/trial_001": "pending"}, what="the records")

    out = tmp_path / "again" / "out"
    code, printed = submit_then_ctrl_c(sweep_file(tmp_path / "again", [0.1, 0.2], steps=4), out, "--cancel-on-stop")

    assert code == 130, printed
    assert "cancelled the SLURM tasks" in printed and "Ctrl-C cancels them" in printed
    wait_for(lambda: not set(tasks().values()) & set(slurm.jobs()), what="the tasks to go")
    assert cli(["sweep", "cancel", str(out)]).stdout.startswith("no trial under")


def test_a_trial_near_its_time_limit_checkpoints_requeues_itself_and_resumes(slurm, near_time_limit):
    """SLURM's own SIGUSR1 before the time limit (`--signal=USR1@40`, from the launcher's `signal_delay_s`), not a
    test's: Lightning saves a checkpoint and requeues the task, which resumes to the reference's weights."""
    submitted = near_time_limit
    stdout, stderr = submitted.runner.communicate(timeout=600)

    assert submitted.runner.returncode == 0, stdout + stderr
    assert stdout.splitlines()[-1] == "2 done", stdout
    assert "SLURM requeued job" in stdout
    stopped, reference = (submitted.out / "grid" / f"trial_{i:03d}" for i in range(2))
    record = records(submitted.out)["trial_000"]
    assert record["status"] == "done" and record["attempts"] >= 2 and record["action"] == "resume", record
    assert records(submitted.out)["trial_001"]["attempts"] == 1
    output = (stopped / "output.log").read_text()
    assert "Handling auto-requeue signal" in output and "Requeued SLURM job" in output, output
    assert "Bypassing signal" not in output
    assert_same_weights(stopped, reference)


def test_a_trial_of_two_tasks_runs_ddp_and_writes_each_row_once(slurm, two_tasks):
    stdout, stderr = two_tasks.runner.communicate(timeout=600)

    assert two_tasks.runner.returncode == 0, stdout + stderr
    assert stdout.splitlines()[-1] == "1 done", stdout
    trial = two_tasks.out / "grid" / "trial_000"
    record = records(two_tasks.out)["trial_000"]
    assert record["status"] == "done" and record["attempts"] == 1, record
    assert record["tasks"]["action"] == "fit"  # task 0 decided, task 1 followed
    output = (trial / "output.log").read_text()
    assert "MEMBER: 1/2" in output and "MEMBER: 2/2" in output, output  # one DDP run of two processes
    run = yaml.safe_load((trial / "run.yaml").read_text())
    assert run["status"] == "finished" and not run.get("resumes"), run
    assert len(list(two_tasks.out.rglob("run.yaml"))) == 1
    assert sorted(p.name for p in (trial / "checkpoints").iterdir()) == ["epoch=1-step=4.ckpt", "last.ckpt"]
    with (trial / "batch_log.csv").open() as f:
        rows = [(r["epoch"], r["mode"], r["batch"]) for r in csv.DictReader(f)]
    assert len(rows) == len(set(rows)), rows  # rank 0 writes, once
    assert sorted(r for r in rows if r[1] == "train") == [(e, "train", b) for e in "01" for b in "01"]
    with (trial / "metrics.csv").open() as f:
        epochs = [r["epoch"] for r in csv.DictReader(f) if r.get("val/loss/epoch")]
    assert epochs == ["0", "1"]
    assert (trial / "hparams.yaml").read_text().count("trainer/strategy") == 1
