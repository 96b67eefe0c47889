"""A searched leaf on the real single-node SLURM cluster (tests/slurm_cluster.py): a job array of workers, each
pulling trials from the leaf's one study, on the journal file in the output and on a real PostgreSQL server.

Each test runs the runner in this process; the workers are real sbatch array tasks running submitit's pickled call.
"""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import write_yaml
from optuna.trial import TrialState
from slurm_cluster import PARTITION
from test_sweep_search import postgres, search_config, with_profile  # noqa: F401 - the module's PostgreSQL server

from lighter.sweep import study as studies
from lighter.sweep.sweep_run import run_trials
from lighter.sweep.trial import Trial

# One cluster for the session: under pytest-xdist (`make test`) every SLURM test runs on the same worker.
pytestmark = pytest.mark.xdist_group("slurm")


@pytest.mark.usefixtures("slurm")
@pytest.mark.parametrize("storage", ["journal", "postgres"])
def test_slurm_workers_pull_one_studys_trials_to_its_budget_exactly(storage, request, tmp_path, monkeypatch, cli):
    root = search_config(tmp_path, trials=4, epochs=1)
    config = yaml.safe_load(root.read_text())
    config["launcher"] = {"partition": PARTITION, "time": 10, "cpus": 1, "poll_s": 0.5}
    url = str(Path(tmp_path / "out" / "search" / studies.STUDY_FILE))
    if storage == "postgres":
        server = request.getfixturevalue("postgres")
        with_profile(tmp_path, monkeypatch, server.password)  # the workers get LIGHTER_PROFILE as sbatch passes it on
        url = config["launcher"]["storage"] = server.url()
    write_yaml(root, config)
    printed = io.StringIO()

    result = run_trials(root, tmp_path / "out", executor="slurm", jobs=2, stream=printed)

    shown = printed.getvalue()
    assert result.exit_code == 0, shown
    assert "2 SLURM workers pull trials from it" in shown and "submitted 2 search workers as job array" in shown
    study = optuna.load_study(study_name="search", storage=studies.storage(url))
    counted = [t for t in study.trials if t.state in studies.COUNTED]
    assert len(counted) == 4, [(t.number, t.state) for t in study.trials]
    assert not [t for t in study.trials if t.state is TrialState.RUNNING]
    leaf_dir = tmp_path / "out" / "search"
    dirs = sorted(p.name for p in leaf_dir.glob("trial_*"))
    assert dirs == sorted(f"trial_{t.number:03d}" for t in counted), "a trial number used twice, or one lost"
    records = [Trial(leaf_dir / name).record() for name in dirs]
    assert {r["status"] for r in records} <= {"done", "pruned"}
    arrays = {r["slurm_job"].split("_")[0] for r in records}
    assert len(arrays) == 1 and arrays <= set(shown.split()), "every trial ran in a task of the one job array"
    assert sorted(e.trial.name for e in result.ended) == dirs, "the runner reported every trial's end"
    # Every trial directory reruns alone, and its study keeps what the search recorded.
    for name in dirs:
        done = cli(["fit", str(leaf_dir / name / "config.yaml"), "--run-dir", str(tmp_path / "alone" / name)])
        assert done.returncode == 0, done.stderr
    again = optuna.load_study(study_name="search", storage=studies.storage(url))
    assert [(t.state, t.value) for t in again.trials] == [(t.state, t.value) for t in study.trials]
