"""Shared helpers: a tiny `project` package and config written to tmp_path, CSV logs, and the CLI in a subprocess.

Every run is real: Lightning's Trainer on CPU, MONAI's ConfigParser, torchmetrics. The data are a few random
tensors, so a whole fit takes about a second.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

# The `project` package the configs import (`project: ...`). `probe` holds what tests look at after a run:
# module state is fresh for every run because lighter re-imports `project` each time.
PROJECT_FILES = {
    "__init__.py": '"""A tiny project for lighter\'s tests."""\n',
    "data.py": '''
        """Few, small, seeded samples in every shape a batch can take."""

        import torch
        from torch.utils.data import Dataset, TensorDataset


        def _tensors(n, features, classes, seed):
            g = torch.Generator().manual_seed(seed)
            return torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)


        def pairs(n=16, features=4, classes=3, seed=0):
            """(x, y) batches."""
            return TensorDataset(*_tensors(n, features, classes, seed))


        def inputs(n=16, features=4, seed=0):
            """Bare inputs, as predict's default batch adapter expects: a tensor is a map-style dataset."""
            return _tensors(n, features, 1, seed)[0]


        class Samples(Dataset):
            """(x, y, "sample-i") tuples, or dicts {"image", "label", "name"} with `as_dict`."""

            def __init__(self, n=16, features=4, classes=3, seed=0, as_dict=False):
                self.x, self.y = _tensors(n, features, classes, seed)
                self.as_dict = as_dict

            def __len__(self):
                return len(self.y)

            def __getitem__(self, i):
                if self.as_dict:
                    return {"image": self.x[i], "label": self.y[i], "name": f"sample-{i}"}
                return self.x[i], self.y[i], f"sample-{i}"


        def images(n=8, size=8, seed=0):
            """(1xSxS image, SxS mask) pairs for a per-pixel model."""
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(n, 1, size, size, generator=g)
            return TensorDataset(x, (x[:, 0] > 0).long())
    ''',
    "probe.py": '''
        """Things a test inspects after a run, or parts that must never be built."""

        import gc

        import pytorch_lightning as pl
        import torch
        from torch import nn

        FROZEN = []  # objects kept from the garbage collector when each loop started
        CAPTURED = {}  # stage -> (trainer, system), filled at teardown
        OUTPUTS = {}  # mode -> what each step returned
        CALLS = []  # what models were called with
        BUILT = []  # names of `counted` calls, in call order


        class Capture(pl.Callback):
            def on_fit_start(self, trainer, pl_module):
                FROZEN.append(gc.get_freeze_count())

            def teardown(self, trainer, pl_module, stage):
                CAPTURED[stage] = (trainer, pl_module)

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                OUTPUTS.setdefault("train", []).append(outputs)

            def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
                OUTPUTS.setdefault("val", []).append(outputs)

            def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
                OUTPUTS.setdefault("test", []).append(outputs)

            def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
                OUTPUTS.setdefault("predict", []).append(outputs)


        class Boom:
            """A part the stage must not build."""

            def __init__(self, *args, name="part", **kwargs):
                raise RuntimeError(f"{name} was built")


        def counted(name, value=None):
            BUILT.append(name)
            return value


        class _Recording(nn.Linear):
            def record(self, x, **kwargs):
                CALLS.append({"training": self.training, **kwargs})
                return super().forward(x)


        class EpochModel(_Recording):
            def forward(self, x, epoch):
                return self.record(x, epoch=epoch)


        class StepModel(_Recording):
            def forward(self, x, step):
                return self.record(x, step=step)


        class EpochStepModel(_Recording):
            def forward(self, x, epoch, step):
                return self.record(x, epoch=epoch, step=step)


        class PixelNet(nn.Module):
            """A 1x1 conv: works on any image size, and records the spatial size it was called with."""

            def __init__(self, classes=2):
                super().__init__()
                self.conv = nn.Conv2d(1, classes, kernel_size=1)

            def forward(self, x):
                CALLS.append({"training": self.training, "size": tuple(x.shape[-2:])})
                return self.conv(x)


        class SplitLoss(nn.Module):
            """Cross-entropy plus a small L2 term on the logits, returned as a dict with `total`."""

            def __init__(self):
                super().__init__()
                self.ce = nn.CrossEntropyLoss()

            def forward(self, pred, target):
                ce = self.ce(pred, target)
                l2 = 0.01 * pred.pow(2).mean()
                return {"total": ce + l2, "ce": ce, "l2": l2}


        def argmax(t):
            return torch.argmax(t, dim=1)
    ''',
}


def write_project(root: Path, name: str = "project") -> Path:
    """Write the test `project` package under `root` and return its directory."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for filename, text in PROJECT_FILES.items():
        (folder / filename).write_text(textwrap.dedent(text).lstrip())
    return folder


def write_yaml(path: Path, data: dict[str, Any] | str) -> Path:
    """Write a config as YAML (a dict) or verbatim (a str) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def loader(dataset: dict[str, Any], batch_size: int = 8, **kwargs: Any) -> dict[str, Any]:
    return {"_target_": "torch.utils.data.DataLoader", "dataset": dataset, "batch_size": batch_size, **kwargs}


def classifier_config(tmp_path: Path, *, epochs: int = 1) -> dict[str, Any]:
    """A complete config for a 4-feature, 3-class Linear classifier with every stage's data and a CSV logger.

    Writes the `project` package into tmp_path; `project` in the config is its absolute path.
    """
    project = write_project(tmp_path)
    pairs = {"_target_": "project.data.pairs"}
    return {
        "project": str(project),
        "trainer": {
            "_target_": "pytorch_lightning.Trainer",
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": epochs,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "enable_checkpointing": False,
            "default_root_dir": str(tmp_path),
            "logger": {
                "_target_": "pytorch_lightning.loggers.CSVLogger",
                "save_dir": str(tmp_path),
                "name": "logs",
            },
            "callbacks": [{"_target_": "project.probe.Capture"}],
        },
        "system": {
            "_target_": "lighter.System",
            "model": {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 3},
            "criterion": {"_target_": "torch.nn.CrossEntropyLoss"},
            "optimizer": {"_target_": "torch.optim.SGD", "params": "$@system::model.parameters()", "lr": 0.1},
            "dataloaders": {
                "train": loader(pairs, shuffle=True),
                "val": loader({**pairs, "seed": 1}),
                "test": loader({**pairs, "seed": 2}),
                "predict": loader({"_target_": "project.data.inputs", "seed": 3}),
            },
        },
    }


def accuracy(**kwargs: Any) -> dict[str, Any]:
    return {"_target_": "torchmetrics.Accuracy", "task": "multiclass", "num_classes": 3, **kwargs}


def read_metrics(save_dir: Path, name: str = "logs") -> list[dict[str, float]]:
    """Rows of the last run's metrics.csv (the CSV logger's newest version), empty cells dropped, values as floats."""
    versions = sorted((save_dir / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    path = versions[-1] / "metrics.csv"
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def logged(rows: list[dict[str, float]], name: str) -> list[float]:
    """Every value logged under `name`, in order."""
    return [row[name] for row in rows if name in row]


def captured(stage: str) -> tuple[Any, Any]:
    """(trainer, system) of the last run's `stage`, as the Capture callback saw them at teardown."""
    return sys.modules["project.probe"].CAPTURED[stage]


def probe() -> Any:
    """The `project.probe` module of the last run."""
    return sys.modules["project.probe"]


CLI_TIMEOUT = 180


def run_cli(
    args: list[str], cwd: Path, *, console_script: bool = False, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run `python -m lighter ARGS` (or the `lighter` console script) in a subprocess and capture its output."""
    command = [str(Path(sys.executable).parent / "lighter")] if console_script else [sys.executable, "-m", "lighter"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LIGHTER_DEBUG", None)
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    """`classifier_config` for this test's tmp_path."""
    return classifier_config(tmp_path)


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lightning writes `lightning_logs/` and checkpoints under the cwd by default; keep them in tmp_path.
    monkeypatch.chdir(tmp_path)
