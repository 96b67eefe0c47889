"""The smaller sweep defects of issue 23, item 13: a root-only cascade, one seed in an experiment, `1 trial`,
exits after a signal as 128+N, and the cascade's layout rule for leaf depths."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from lighter.errors import ConfigError
from lighter.sweep.expand import expand
from lighter.sweep.local import Running
from lighter.sweep.lock import TrialLock

ROOT = """\
seed: 0
trainer: {max_epochs: 1}
system:
  model: {_target_: torch.nn.Linear, in_features: 4, out_features: 3}
"""
AXIS = "sweep:\n  system::model::in_features: [4, 5]\n"


def cascade(tmp_path: Path, leaves: dict[str, str]) -> Path:
    root = tmp_path / "cascade"
    root.mkdir()
    (root / "cfg.yaml").write_text(ROOT)
    for folder, text in leaves.items():
        (root / folder).mkdir(parents=True)
        (root / folder / "cfg.yaml").write_text(text)
    return root


def test_a_cascade_of_only_its_root_cfg_names_the_layout(tmp_path, cli):
    root = cascade(tmp_path, {})
    done = cli(["sweep", "expand", str(root)])
    assert done.returncode == 2, done.stderr
    assert f"the cascade folder '{root}' holds only its root cfg.yaml" in done.stderr
    assert "<root>/<mode>/<dataset>/<model>/<trainer>/cfg.yaml" in done.stderr
    assert f"lighter sweep run {root / 'cfg.yaml'}" in done.stderr
    assert "no config file given" not in done.stderr


def test_one_seed_in_an_experiment_says_it_makes_one_trial_and_one_trial_is_singular(tmp_path, cli):
    root = cascade(tmp_path, {"experiment/data/m": "trainer: {max_epochs: 2}\n"})
    done = cli(["sweep", "expand", str(root), "--out", str(tmp_path / "out")])
    assert done.returncode == 0, done.stderr
    assert "this experiment has one seed (seed: 0, at" in done.stderr and "`seed: [0, 1, 2]`" in done.stderr
    assert f"\n1 trial in {tmp_path / 'out'}" in done.stdout


@pytest.mark.parametrize(
    "leaves, message, suggestion",
    [
        pytest.param(
            {"sweep/data/m": AXIS, "sweep/data2": AXIS},
            "leaves at different depths: 'sweep/data2' is 1 and 'sweep/data/m' is 2 folders below their mode folder",
            "trailing levels may be left out, the same for every leaf",
            id="different-depths",
        ),
        pytest.param(
            {"sweep/data/m/t/extra": AXIS},
            "the leaf 'sweep/data/m/t/extra' is 4 folders below its mode folder",
            "put a setting that varies in a `sweep:` axis",
            id="too-deep",
        ),
    ],
)
def test_leaves_follow_the_layout_rule(tmp_path, leaves, message, suggestion):
    with pytest.raises(ConfigError, match=message) as err:
        expand(cascade(tmp_path, leaves), tmp_path / "out")
    assert "<root>/<mode>/<dataset>/<model>/<trainer>" in err.value.suggestion and suggestion in err.value.suggestion
    assert not (tmp_path / "out").exists()


def _killed(sig: int) -> None:
    os.kill(os.getpid(), sig)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_trial_process_killed_by_a_signal_exits_128_plus_n(tmp_path, sig):
    trial = tmp_path / "trial_000"
    trial.mkdir()
    process = multiprocessing.get_context("spawn").Process(target=_killed, args=(sig,))
    process.start()
    process.join()
    assert process.exitcode == -sig  # what multiprocessing reports
    assert Running(trial, process, 0, TrialLock(trial)).exit_code == 128 + sig
