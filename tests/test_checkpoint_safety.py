"""Checkpoints lighter reads itself: safe loading (no code runs from a file), and a clear error for every kind of
file that is not a whole Lightning checkpoint. Through the real CLI, as a user passes `ckpt_path`."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import classifier_config, write_yaml

from lighter.errors import ConfigError
from lighter.run.checkpoint_io import TRUST_ENV, read_checkpoint


class Planted:
    """Unpickling this creates a file: what a crafted checkpoint could do with any shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def lightning_like(**extra) -> dict:
    return {"state_dict": {"model.weight": torch.randn(64, 64)}, "pytorch-lightning_version": "2.6.0", **extra}


def write_case(path: Path, case: str) -> None:
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        torch.save(lightning_like(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "text":
        path.write_text("this is not a checkpoint\n")
    elif case == "bare-tensor":
        torch.save(torch.zeros(3), path)
    elif case == "plain-state-dict":
        torch.save(torch.nn.Linear(4, 3).state_dict(), path)
    elif case == "directory":
        path.mkdir()


CORRUPT = [
    pytest.param("empty", "is empty (0 bytes)", id="empty"),
    pytest.param("truncated", "is truncated or corrupt", id="truncated"),
    pytest.param("text", "is not a PyTorch checkpoint (it starts with neither a zip nor a pickle header)", id="text"),
    pytest.param("bare-tensor", "holds a bare Tensor, not a Lightning checkpoint", id="bare-tensor"),
    pytest.param(
        "plain-state-dict",
        "is a plain state dict (tensors by parameter name), not a Lightning checkpoint",
        id="plain-state-dict",
    ),
    pytest.param("directory", "is a directory, not a checkpoint file", id="directory"),
]


@pytest.fixture
def test_config(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "config.yaml", classifier_config(tmp_path))


@pytest.mark.parametrize(("case", "message"), CORRUPT)
def test_a_file_that_is_not_a_whole_checkpoint_is_a_config_error_naming_it(tmp_path, test_config, case, message, cli):
    ckpt = tmp_path / "model.ckpt"
    write_case(ckpt, case)
    done = cli(["test", str(test_config), f"args::test::ckpt_path={ckpt}"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"args::test::ckpt_path: checkpoint {ckpt} {message}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "logs").exists()  # refused before any run directory


@pytest.mark.parametrize(("case", "message"), CORRUPT)
def test_read_checkpoint_says_what_is_wrong(tmp_path, case, message):
    ckpt = tmp_path / "model.ckpt"
    write_case(ckpt, case)
    with pytest.raises(ConfigError) as caught:
        read_checkpoint(ckpt, key="k")
    assert caught.value.message == f"checkpoint {ckpt} {message}" or caught.value.message.startswith(
        f"checkpoint {ckpt} {message} ("
    )
    assert caught.value.key == "k"


def test_a_checkpoint_that_would_run_code_runs_none_and_is_refused(tmp_path, test_config, cli):
    marker = tmp_path / "PLANTED"
    ckpt = tmp_path / "crafted.ckpt"
    torch.save(lightning_like(extra=Planted(marker)), ckpt)
    done = cli(["test", str(test_config), f"args::test::ckpt_path={ckpt}"], cwd=tmp_path)
    assert done.returncode == 2
    assert "holds Python objects that only arbitrary unpickling can load, which can run any code" in done.stderr
    assert f"set {TRUST_ENV}=1" in done.stderr
    assert not marker.exists()
    # Resume reads checkpoints as safely: a crafted file in a run's checkpoints/ is refused the same way.
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    write_yaml(run_dir / "run.yaml", {"status": "interrupted", "stage": "fit"})
    (run_dir / "config.yaml").write_text(test_config.read_text())
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(ckpt.read_bytes())
    resumed = cli(["resume", str(run_dir)], cwd=tmp_path)
    assert resumed.returncode == 2
    assert "holds Python objects that only arbitrary unpickling can load" in resumed.stderr
    assert not marker.exists()


def test_trusting_a_checkpoint_is_an_explicit_opt_in(tmp_path, monkeypatch):
    ckpt = tmp_path / "old.ckpt"
    torch.save(lightning_like(extra={"when": __import__("datetime").date(2024, 1, 1)}), ckpt)
    with pytest.raises(ConfigError, match="arbitrary unpickling") as caught:
        read_checkpoint(ckpt)
    assert isinstance(caught.value.__cause__, pickle.UnpicklingError)
    monkeypatch.setenv(TRUST_ENV, "1")
    assert read_checkpoint(ckpt)["extra"]["when"].year == 2024


@pytest.mark.parametrize("target", [b"_rebuild_tensor_v2", b"collections"], ids=["class-name", "module-name"])
def test_flipped_bytes_are_corrupt_not_python_objects(tmp_path, target):
    # One byte changed inside the pickle: the unpickler may report an unknown class, but the zip's checksum
    # tells a damaged file from one that holds objects, so the user is not told to turn off safe loading.
    ckpt = tmp_path / "flipped.ckpt"
    torch.save(lightning_like(), ckpt)
    data = bytearray(ckpt.read_bytes())
    at = data.index(target) + len(target) // 2
    data[at] ^= 0x20
    ckpt.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as caught:
        read_checkpoint(ckpt)
    assert caught.value.message.startswith(f"checkpoint {ckpt} is corrupt: its part '"), caught.value.message
    assert "data.pkl' fails its checksum" in caught.value.message
    assert TRUST_ENV not in caught.value.suggestion


def test_ckpt_path_hpc_outside_a_requeued_job_is_a_config_error(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    config = write_yaml(tmp_path / "config.yaml", classifier_config(tmp_path))
    done = cli(["fit", str(config), "args::fit::ckpt_path=hpc"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert (
        "args::fit::ckpt_path: 'hpc' names the checkpoint Lightning saves when SLURM requeues this job" in done.stderr
    )
    assert "lighter resume RUN_DIR" in done.stderr and "Traceback" not in done.stderr
