"""A sweep's trial files never hold a secret at rest (issue 23, item 9): refused at expansion, nothing written;
a secret read from the environment at run time expands, and no trial file holds its value."""

from __future__ import annotations

from pathlib import Path

import pytest

from lighter.errors import ConfigError
from lighter.sweep.expand import expand

SECRET = "tr1al-Zk8WqP3v"
ROOT = """\
seed: 0
trainer: {max_epochs: 1}
system:
  model: {_target_: torch.nn.Linear, in_features: 4, out_features: 3}
vars:
  hub: {api_key: {value}}
"""


def cascade(tmp_path: Path, api_key: str, leaf: str) -> Path:
    root = tmp_path / "cascade"
    (root / "sweep/data/m").mkdir(parents=True)
    (root / "cfg.yaml").write_text(ROOT.replace("{value}", api_key))
    (root / "sweep/data/m/cfg.yaml").write_text(leaf)
    return root


@pytest.mark.parametrize(
    "api_key, leaf, key, line",
    [
        pytest.param(
            SECRET,
            "sweep:\n  system::model::in_features: [4]\n",
            "vars::hub::api_key",
            "cascade/cfg.yaml:6",
            id="in-cfg",
        ),
        pytest.param(
            "''",
            f"sweep:\n  vars::hub::api_key: [{SECRET}, {SECRET}x]\n",
            "sweep::vars::hub::api_key",
            "m/cfg.yaml:2",
            id="secret-axis",
        ),
        pytest.param(
            "''",
            "vars:\n  pin_password: 98765432\nsweep:\n  system::model::in_features: [4]\n",
            "vars::pin_password",
            "m/cfg.yaml:2",
            id="numeric",
        ),
    ],
)
def test_a_secret_in_the_cascade_is_refused_before_anything_is_written(tmp_path, api_key, leaf, key, line):
    root = cascade(tmp_path, api_key, leaf)
    with pytest.raises(ConfigError, match="never keep a secret on disk") as err:
        expand(root, tmp_path / "out")
    assert err.value.key == key and line in str(err.value)
    assert "LIGHTER_PROFILE" in str(err.value) and "os.environ" in str(err.value)
    assert SECRET not in str(err.value) and "98765432" not in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.yaml"))


def test_a_secret_read_from_the_environment_expands_and_no_trial_file_holds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_KEY", SECRET)
    root = cascade(tmp_path, "\"$os.environ['HUB_KEY']\"", "sweep:\n  system::model::in_features: [4, 5]\n")
    trials = expand(root, tmp_path / "out")
    assert len(trials) == 2
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert {p.name for p in written} == {"config.yaml", "trial.yaml"}
    assert not [p for p in written if SECRET.encode() in p.read_bytes()]
    assert "os.environ['HUB_KEY']" in trials[0].config_path.read_text()
