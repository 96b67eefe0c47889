"""`project:` is resolved next to the file that declares it; the current directory is only a fallback (issue 23, 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lighter.cli import main
from lighter.engine import prepare
from lighter.errors import ConfigError
from lighter.sweep.expand import expand

CONFIG = """\
project: ./proj
system:
  model: {_target_: torch.nn.Linear, in_features: 4, out_features: 3}
"""


def layout(tmp_path: Path, *, beside: bool, in_cwd: bool) -> tuple[Path, Path]:
    """repo/configs/c.yaml with `project: ./proj`; the folder next to it and/or in the cwd (work/)."""
    configs, work = tmp_path / "repo" / "configs", tmp_path / "work"
    configs.mkdir(parents=True)
    work.mkdir()
    (configs / "c.yaml").write_text(CONFIG)
    for root, wanted in ((configs, beside), (work, in_cwd)):
        if wanted:
            (root / "proj").mkdir()
            (root / "proj" / "__init__.py").write_text(f"WHERE = {str(root)!r}\n")
    return configs / "c.yaml", work


@pytest.mark.parametrize(
    "beside, in_cwd, expected",
    [
        pytest.param(True, False, "repo/configs/proj", id="next-to-the-file"),
        pytest.param(False, True, "work/proj", id="cwd-fallback-for-upstream-configs"),
    ],
)
def test_relative_project_is_the_folder_next_to_the_file_then_the_cwd(tmp_path, monkeypatch, beside, in_cwd, expected):
    path, work = layout(tmp_path, beside=beside, in_cwd=in_cwd)
    monkeypatch.chdir(work)
    experiment = prepare("fit", [str(path)], imports=False)
    assert experiment.config["project"] == str(tmp_path / expected)


def test_a_folder_in_the_cwd_shadowing_the_one_next_to_the_file_is_refused_naming_both(tmp_path, monkeypatch, capsys):
    path, work = layout(tmp_path, beside=True, in_cwd=True)
    monkeypatch.chdir(work)
    with pytest.raises(ConfigError, match="names two different folders") as err:
        prepare("fit", [str(path)], imports=False)
    assert str(tmp_path / "repo/configs/proj") in str(err.value) and str(work / "proj") in str(err.value)
    assert "c.yaml:1" in str(err.value)
    with pytest.raises(SystemExit) as exit_:  # the CLI: exit 2, the message, no traceback
        main(["check", str(path)])
    assert exit_.value.code == 2
    assert "names two different folders" in capsys.readouterr().err


def test_show_trust_and_check_name_the_absolute_folder_imported(tmp_path, monkeypatch, capsys):
    path, work = layout(tmp_path, beside=True, in_cwd=False)
    monkeypatch.chdir(work)
    main(["show", str(path), "--trust"])
    assert f"# Project folder imported as `project`: {tmp_path / 'repo/configs/proj'}" in capsys.readouterr().out


def test_sweep_expansion_resolves_project_next_to_the_cascade_whatever_the_cwd(tmp_path, monkeypatch):
    root = tmp_path / "cascade"
    (root / "sweep/data/m").mkdir(parents=True)
    (root / "proj").mkdir()
    (root / "cfg.yaml").write_text("seed: 0\ntrainer: {max_epochs: 1}\n" + CONFIG)
    (root / "sweep/data/m/cfg.yaml").write_text("sweep:\n  system::model::in_features: [4]\n")
    first = expand(root, tmp_path / "out")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "proj").mkdir(parents=True)  # a folder of the same name in the runner's cwd changes nothing
    monkeypatch.chdir(elsewhere)
    again = expand(root, tmp_path / "out")
    assert [t.record()["status"] for t in again] == ["pending"]
    assert yaml.safe_load(first[0].config_path.read_text())["project"] == str(root / "proj")
    assert first[0].record()["config_hash"] == again[0].record()["config_hash"]
    (root / "proj").rmdir()  # and a sweep never falls back to the cwd: the folder next to the file or an error
    with pytest.raises(ConfigError, match="resolved next to the file that declares it"):
        expand(root, tmp_path / "out")


def test_a_project_folder_found_nowhere_names_both_places_tried(tmp_path, monkeypatch):
    path, work = layout(tmp_path, beside=False, in_cwd=False)
    monkeypatch.chdir(work)
    with pytest.raises(ConfigError, match="directory './proj' does not exist") as err:
        prepare("fit", [str(path)], imports=False)
    assert f"tried {tmp_path / 'repo/configs/proj'}, {work / 'proj'}" in str(err.value)
    assert "resolved next to the file that declares it, then in the current directory" in str(err.value)
