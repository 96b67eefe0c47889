"""Issue 23, item 4: a `ModelCheckpoint(dirpath=...)` folder outside the run directory belongs to one fit. Another
fit is refused before it trains, naming the run that writes there and the way out; `lighter test` of a run whose
files there another run overwrote says so, in terms of testing. All in this process (the `cli` fixture)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import classifier_config, write_yaml

from lighter.errors import ConfigError
from lighter.names import CHECKPOINT_FOLDER_OWNER
from lighter.run import folder_claims

SHARED = "trainer::callbacks::1::dirpath=shared_ckpts"


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    config = classifier_config(tmp_path)
    config["trainer"]["enable_checkpointing"] = True
    checkpoint = {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "filename": "best", "save_last": True}
    config["trainer"]["callbacks"].append(checkpoint)
    return write_yaml(tmp_path / "config.yaml", config)


def test_a_second_fit_into_another_runs_checkpoint_folder_is_refused_and_the_first_run_still_tests(
    experiment, tmp_path, cli
):
    first = cli(["fit", str(experiment), "--run-dir", "first", SHARED])
    assert first.returncode == 0, first.stderr[-3000:]
    shared = tmp_path / "shared_ckpts"
    assert yaml.safe_load((shared / CHECKPOINT_FOLDER_OWNER).read_text()) == {"run_dir": str(tmp_path / "first")}
    before = {p.name: p.read_bytes() for p in shared.glob("*.ckpt")}

    second = cli(["fit", str(experiment), "--run-dir", "second", SHARED])
    assert second.returncode == 2
    assert (
        f"trainer::callbacks::1::dirpath: the checkpoint folder {shared} belongs to the run {tmp_path / 'first'}; "
        "two runs writing there overwrite each other's best.ckpt and last.ckpt" in second.stderr
    )
    assert "from the command line" in second.stderr  # where the dirpath was given
    assert "Leave out `dirpath` (checkpoints then go to <run dir>/checkpoints)" in second.stderr
    assert "Traceback" not in second.stderr
    assert not (tmp_path / "second").exists()  # refused before the run directory was made
    assert {p.name: p.read_bytes() for p in shared.glob("*.ckpt")} == before

    again = cli(["resume", str(tmp_path / "first"), "trainer::max_epochs=2"])  # the same run writes there again
    assert again.returncode == 0, again.stderr[-3000:]
    tested = cli(["test", str(tmp_path / "first")])
    assert tested.returncode == 0, tested.stderr[-3000:]

    shutil.rmtree(tmp_path / "first")
    orphaned = cli(["fit", str(experiment), "--run-dir", "third", SHARED])
    assert orphaned.returncode == 2
    assert f"belongs to the run {tmp_path / 'first'}, whose directory no longer exists" in orphaned.stderr
    assert f"delete {shared / CHECKPOINT_FOLDER_OWNER}" in orphaned.stderr


def test_testing_a_run_whose_checkpoints_another_run_overwrote_says_so(experiment, tmp_path, cli):
    assert cli(["fit", str(experiment), "--run-dir", "first", SHARED]).returncode == 0
    shared = tmp_path / "shared_ckpts"
    (shared / CHECKPOINT_FOLDER_OWNER).unlink()  # as before runs claimed their folders: the second overwrites
    overwrite = "trainer::callbacks::1::enable_version_counter=false"  # best.ckpt, not best-v1.ckpt, as in the issue
    assert cli(["fit", str(experiment), "--run-dir", "second", SHARED, overwrite]).returncode == 0
    assert sorted(p.name for p in shared.glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]

    tested = cli(["test", str(tmp_path / "first")])
    assert tested.returncode == 2
    assert (
        f"the run {tmp_path / 'first'} has no checkpoint to test with: "
        f"the 2 .ckpt files in {shared} were written by other runs" in tested.stderr
    )
    assert "resume" not in tested.stderr
    assert cli(["test", str(tmp_path / "second")]).returncode == 0


def test_a_folder_claimed_between_the_check_and_the_claim_is_refused(tmp_path):
    """Two fits started at once both pass the check; the marker is created exclusively, so one of them loses."""
    folder, winner, loser = tmp_path / "shared", tmp_path / "a", tmp_path / "b"
    folder_claims.claim(folder, winner, key="trainer::callbacks::0")
    folder_claims.claim(folder, winner, key="trainer::callbacks::0")  # its own: no error
    with pytest.raises(ConfigError, match=r"trainer::callbacks::0::dirpath: the checkpoint folder .* belongs to"):
        folder_claims.claim(folder, loser, key="trainer::callbacks::0")
    assert folder_claims.owner(folder) == winner
