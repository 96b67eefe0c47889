"""Two-process DDP on CPU (gloo), launched through the real CLI: what single-process tests cannot see."""

import csv
import textwrap
from pathlib import Path

import pytest
from conftest import run_cli

DDP = ["trainer::strategy=ddp", "trainer::devices=2", "trainer::accelerator=cpu"]

# 12 samples: DistributedSampler pads nothing, so two processes see exactly the single process's data.
CONFIG = textwrap.dedent(
    """\
    seed: 0
    project: ./proj
    trainer:
      _target_: pytorch_lightning.Trainer
      max_epochs: 2
      enable_progress_bar: false
      enable_model_summary: false
      logger: {_target_: pytorch_lightning.loggers.CSVLogger, save_dir: logs, name: run}
    system:
      _target_: lighter.System
      model: {_target_: project.Net}
      criterion: {_target_: torch.nn.CrossEntropyLoss}
      optimizer: {_target_: torch.optim.SGD, params: "$@system::model.parameters()", lr: 0.1}
      metrics:
        train: {accuracy: {_target_: torchmetrics.Accuracy, task: multiclass, num_classes: 2}}
        val: "%#train"
      dataloaders:
        train: {_target_: torch.utils.data.DataLoader, dataset: {_target_: project.toy}, batch_size: 2}
        val: "%#train"
    """
)

PROJECT = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import TensorDataset


    def toy(n=12):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 4, generator=g)
        return TensorDataset(x, (x[:, 0] > 0).long())


    class Net(torch.nn.Linear):
        def __init__(self, fail_on_rank=None):
            super().__init__(4, 2)
            self.fail_on_rank = fail_on_rank
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            dist = torch.distributed
            if self.calls == 3 and dist.is_initialized() and dist.get_rank() == self.fail_on_rank:
                raise ValueError(f"deliberate failure on rank {self.fail_on_rank}")
            return super().forward(x)
    """
)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text(PROJECT)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    return tmp_path


def metrics(run_dir: Path) -> dict[str, float]:
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    # Epoch values only: per-step values are each process's own batches.
    return {k: float(v) for row in rows for k, v in row.items() if v and k.startswith("val/") and k.endswith("/epoch")}


@pytest.mark.slow
def test_fit_writes_run_directory_and_checkpoint_once(workdir):
    done = run_cli(["fit", "cfg.yaml", *DDP], workdir, console_script=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((workdir / "logs" / "run").iterdir())
    assert [r.name for r in runs] == ["version_0"]  # one run directory, not one per rank
    files = sorted(p.name for p in runs[0].iterdir())
    # hparams.yaml: the CSV logger's copy of the (masked, flattened) config that lighter hands every tracker.
    assert files == ["checkpoints", "config.yaml", "hparams.yaml", "metrics.csv", "run.yaml"]
    assert "trainer/strategy" in (runs[0] / "hparams.yaml").read_text()
    assert len(list((runs[0] / "checkpoints").iterdir())) == 1
    assert "trainer::strategy=ddp" in (runs[0] / "run.yaml").read_text()


@pytest.mark.slow
def test_two_process_validate_matches_single_process(workdir, cli):
    single = cli(["validate", "cfg.yaml", "trainer::accelerator=cpu", "trainer::devices=1"], cwd=workdir)
    assert single.returncode == 0, single.stderr[-3000:]
    double = run_cli(["validate", "cfg.yaml", *DDP], workdir, timeout=240)
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = metrics(workdir / "logs" / "run" / "version_0"), metrics(workdir / "logs" / "run" / "version_1")
    assert set(one) == {"val/loss/epoch", "val/metrics/accuracy/epoch"}
    assert one.keys() == two.keys()
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-7), key


@pytest.mark.slow
def test_a_failing_rank_ends_every_rank_and_is_reported_once(workdir):
    done = run_cli(
        ["fit", "cfg.yaml", *DDP, "system::model::fail_on_rank=1"], workdir, console_script=True, timeout=240
    )  # timeout: no hang
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert output.count("ValueError: deliberate failure on rank 1") == 1
    assert "stopped because another process of this run failed; its error is above" in done.stderr
