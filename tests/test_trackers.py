"""Loggers chosen in YAML, verified with each tracker's own reader: a real fit through the CLI, then the losses,
metrics and hyperparameters read back from the tracker's store; secrets reach none of them.

Comet writes its offline archive and W&B ends its run when the process exits, so a fit with either runs in a process
of its own; the other loggers' fits run in this one (the `cli` fixture).
"""

import shutil
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import accuracy, classifier_config, run_cli, write_yaml
from trackers import BACKENDS, Tracked, offline_env

SECRET = "s3cr3t-Vq8ZkP2w"  # under an api_key-like key of the config
PROFILE_SECRET = "pr0f1le-Lm4TnR7x"  # in the user's profile
NUMERIC_SECRET = "98765432"  # typed on the command line under a secret key: YAML reads it as a number
WORKSPACE = "alice-ws-Hc5RjQ"  # Comet's workspace, set by the profile
LOGGER_CLASSES = {
    "csv": "CSVLogger",
    "tensorboard": "TensorBoardLogger",
    "mlflow": "MLFlowLogger",
    "wandb": "WandbLogger",
    "comet": "CometLogger",
}
WRITE_AT_EXIT = {"wandb", "comet"}


@pytest.fixture
def offline(tmp_path, monkeypatch, mlflow_template) -> Path:
    """Trackers offline, their own folders under tmp_path (MLflow's a new SQLite store); the CLI processes inherit
    this environment."""
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    for name, value in offline_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIGHTER_PROFILE_DIR", str(tmp_path / "profiles"))
    monkeypatch.delenv("LIGHTER_PROFILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # what a tracker writes to the home folder is searched too
    return tmp_path


def tracked_config(root: Path, loggers: list[dict]) -> Path:
    config = classifier_config(root, epochs=2)
    config["trainer"]["logger"] = loggers[0] if len(loggers) == 1 else loggers
    config["system"]["metrics"] = {"train": [accuracy()], "val": [accuracy()], "test": [accuracy()]}
    config["vars"] = {"hub": {"api_key": SECRET}}
    return write_yaml(root / "config.yaml", config)


def assert_arrived(tracked: Tracked, backend: str) -> None:
    """Train and val losses and metrics under our names; the config as flat hyperparameters, secrets masked."""
    for prefix in ("train/loss", "val/loss", "train/metrics/", "val/metrics/"):
        assert any(name.startswith(prefix) for name in tracked.metrics), (backend, prefix, sorted(tracked.metrics))
    assert float(tracked.params["system/optimizer/lr"]) == 0.1, backend
    assert tracked.params["system/model/_target_"] == "torch.nn.Linear", backend
    assert tracked.params["vars/hub/api_key"] == "<secret>", backend
    assert not any(":" in name for name in tracked.params), backend
    assert SECRET not in repr(tracked.params), backend


@pytest.mark.slow
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_logger_from_yaml_receives_losses_metrics_and_the_config(offline, backend, cli):
    logger, read = BACKENDS[backend]
    tracked_config(offline, [logger(offline)])
    fit = run_cli if backend in WRITE_AT_EXIT else cli
    done = fit(["fit", "config.yaml"], offline)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = read(offline)
    assert_arrived(run, backend)
    if backend in ("mlflow", "wandb", "comet", "tensorboard"):
        assert "config.yaml" in run.files, (backend, run.files)
    (record,) = [yaml.safe_load(p.read_text()) for p in offline.rglob("run.yaml")]
    (tracker,) = record["trackers"]
    assert tracker["logger"] == LOGGER_CLASSES[backend]
    if backend in ("mlflow", "wandb", "comet"):
        assert tracker["id"], tracker
    if "dir" in tracker:
        assert Path(tracker["dir"]).is_dir(), tracker


@pytest.mark.slow
def test_several_loggers_at_once_and_no_secret_in_any_file(offline):
    """Every logger in one list, fit then test then predict; the secrets of the config and of the profile are in
    no byte written under the run's folder: checkpoints, tracker stores, lighter's files, the cwd. Each command runs
    in a process of its own: what W&B and Comet write at exit (console capture, offline archive) is searched too."""
    loggers = [make(offline) for make, _ in BACKENDS.values()]
    config = tracked_config(offline, loggers)
    data = yaml.safe_load(config.read_text())
    data["trainer"]["enable_checkpointing"] = True
    data["trainer"]["callbacks"].append({"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True})
    write_yaml(config, data)
    profiles = offline / "profiles"
    profiles.mkdir()
    profile = f"vars:\n  comet:\n    token: {PROFILE_SECRET}\n  owner: alice-{PROFILE_SECRET}\n"
    profile += f"trainer::logger::{list(BACKENDS).index('comet')}::workspace: {WORKSPACE}\n"
    (profiles / "alice.yaml").write_text(profile)
    (profiles / "alice.yaml").chmod(0o600)

    pin = f"vars::pin_password={NUMERIC_SECRET}"
    fit = run_cli(["fit", "config.yaml", pin, "--profile", "alice"], offline)
    assert fit.returncode == 0, fit.stderr[-3000:]
    for name, (_, read) in BACKENDS.items():
        (run,) = read(offline)
        assert_arrived(run, name)
        assert run.params["vars/comet/token"] == "<profile alice>", name
        assert run.params["vars/owner"] == "<profile alice>", name

    record = yaml.safe_load((offline / "csv" / "run" / "version_0" / "run.yaml").read_text())
    assert [t["logger"] for t in record["trackers"]] == [LOGGER_CLASSES[name] for name in BACKENDS]
    assert record["command"] == "lighter fit config.yaml vars::pin_password=<secret> --profile alice"

    ckpt = next((offline / "csv" / "run" / "version_0" / "checkpoints").glob("last.ckpt"))
    for stage in ("test", "predict"):
        done = run_cli([stage, "config.yaml", f"args::{stage}::ckpt_path={ckpt}", pin, "--profile", "alice"], offline)
        assert done.returncode == 0, done.stderr[-3000:]

    given = {config, profiles / "alice.yaml"}  # the user's own files hold the secrets by design
    written = [p for p in offline.rglob("*") if p.is_file() and p not in given]
    assert len(written) > 30  # stores of five trackers, checkpoints, lighter's records
    for secret in (SECRET, PROFILE_SECRET, NUMERIC_SECRET, WORKSPACE):
        leaks = [name for name, data in every_byte(offline, written) if secret.encode() in data]
        assert not leaks, f"{secret} found in {leaks}"


def every_byte(root: Path, files: list[Path]) -> list[tuple[str, bytes]]:
    """Each file's bytes, and each member of a zip archive (Comet's offline archive compresses its messages)."""
    found = []
    for path in files:
        found.append((str(path.relative_to(root)), path.read_bytes()))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                found += [(f"{path.relative_to(root)}:{n}", archive.read(n)) for n in archive.namelist()]
    return found
