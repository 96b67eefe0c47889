"""Sweeps on a real single-node SLURM cluster (tests/slurm_cluster.py): one started for the whole session.

Without `slurm-wlm` and `munge` (or without root) these tests skip on a laptop; under CI=true they fail instead,
since `make test` installs them. Trials are the tiny classifier, 1 epoch; each is a real sbatch job array task
running submitit's pickled call on the node.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import slurm_cluster
import yaml
from conftest import classifier_config, write_yaml

from lighter.cli import main


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
def slurm(cluster: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> slurm_cluster.Cluster:
    """The cluster, with SLURM_CONF and its `sacct` in this test's environment (submitit's commands inherit them)."""
    for key, value in cluster.env.items():
        monkeypatch.setenv(key, value)
    return cluster


def lighter(argv: list[str]) -> tuple[int, str, str]:
    """`lighter ARGV` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def sweep_file(tmp_path: Path, lrs: list[float], **launcher) -> Path:
    """One config file over learning rates, 1 epoch, with a `launcher:` block."""
    config = classifier_config(tmp_path, epochs=1)
    del config["trainer"]["default_root_dir"]
    config["seed"] = 0
    config["sweep"] = {"system::optimizer::lr": lrs}
    config["launcher"] = {"partition": slurm_cluster.PARTITION, "time": 10, "cpus": 1, **launcher}
    return write_yaml(tmp_path / "grid.yaml", config)


def records(out: Path) -> dict[str, dict]:
    return {p.parent.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("grid/trial_*/trial.yaml"))}


def wait_for(condition, timeout: float = 120.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_sweep_runs_as_one_job_array_and_a_rerun_submits_nothing_again(slurm, tmp_path):
    root = sweep_file(tmp_path, [0.1, 0.2, 0.3, 0.4])
    out = tmp_path / "out"
    argv = ["sweep", "run", str(root), "-o", str(out), "--executor", "slurm"]
    first = subprocess.Popen(
        [sys.executable, "-m", "lighter", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(records(out)) == 4 and all("slurm_job" in r for r in records(out).values()), 60, "sbatch")
        arrays = {r["slurm_job"].split("_")[0] for r in records(out).values()}
        tasks = sorted(r["slurm_job"] for r in records(out).values())

        code, shown, _ = lighter(["sweep", "status", str(out)])  # 2 CPUs, 1 per trial: 2 run, 2 wait

        assert code == 0
        assert len(arrays) == 1
        assert tasks == [f"{min(arrays)}_{i}" for i in range(4)]
        states = [line.split()[2] for line in shown.splitlines() if line.startswith("grid/")]
        assert set(states) <= {"queued", "running"} and len(states) == 4, shown

        # A second runner while the first waits: it submits nothing and waits for the same tasks.
        code, printed, err = lighter(argv)

        assert code == 0, printed + err
        assert "4 of them already on SLURM" in printed, printed
        assert "job array" not in printed.replace("(SLURM job array)", ""), printed  # no second sbatch
        assert printed.splitlines()[-1] == "4 done"
        stdout, stderr = first.communicate(timeout=120)
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

    code, printed, _ = lighter(argv)

    assert code == 0
    assert printed.splitlines() == [f"4 trials in {out}: 4 complete, 0 to run (SLURM job array)", "4 complete before"]


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
def test_what_slurm_refuses_is_one_message_and_exit_2(slurm, tmp_path, monkeypatch, launcher, env, message):
    root = sweep_file(tmp_path, [0.1], **launcher)
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key)
        else:
            monkeypatch.setenv(key, value)

    code, printed, err = lighter(["sweep", "run", str(root), "-o", str(tmp_path / "out"), "--executor", "slurm"])

    assert code == 2, printed + err
    assert message in err
    assert "Traceback" not in err and "sbatch: error" not in err
    assert records(tmp_path / "out")["trial_000"]["status"] == "pending"  # nothing ran: the next run submits it
