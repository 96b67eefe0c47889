"""A bad file among a run's checkpoints (issue 23, items 2 and 4): skipped with a warning naming it, unless nothing
readable is left; and a run whose checkpoint folder holds only other runs' files is told so, in the stage's words."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import classifier_config, write_yaml


def fitted(tmp_path: Path, cli, **trainer) -> Path:
    config = classifier_config(tmp_path)
    config["seed"] = 0
    config["trainer"].update(
        enable_checkpointing=True,
        callbacks=[{"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True}],
        **trainer,
    )
    done = cli(["fit", str(write_yaml(tmp_path / "config.yaml", config))], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "logs" / "version_0"


def test_an_unreadable_file_in_checkpoints_is_skipped_with_a_warning_unless_nothing_else_is_left(tmp_path, cli):
    run = fitted(tmp_path, cli)
    bad = run / "checkpoints" / "x.ckpt"
    bad.write_bytes(b"")
    tested = cli(["test", str(run)], cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert f"lighter: warning: skipped checkpoint {bad} is empty (0 bytes)" in tested.stderr
    assert yaml.safe_load((tmp_path / "logs" / "version_1" / "run.yaml").read_text())["checkpoint"] == str(
        run / "checkpoints" / "last.ckpt"
    )
    resumed = cli(["resume", str(run), "trainer::max_epochs=2"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"skipped checkpoint {bad} is empty" in resumed.stderr
    for good in (run / "checkpoints").glob("*.ckpt"):  # nothing readable left: the error names a file
        if good != bad:
            good.rename(good.with_suffix(".kept"))
    alone = cli(["test", str(run)], cwd=tmp_path)
    assert alone.returncode == 2, alone.stderr[-3000:]
    assert f"checkpoint {bad} is empty (0 bytes)" in alone.stderr and "Traceback" not in alone.stderr
