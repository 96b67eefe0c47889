"""Issue 23, item 5: the logs of a fit killed mid-epoch (SIGKILL: nothing saved at the stop) and resumed from its
last epoch-end checkpoint. metrics.csv holds every row of the epochs that ended before the kill; TensorBoard's event
files, read as TensorBoard reads them (EventAccumulator, a real local store), hold no step twice; the progress line
of the resumed fit times the fit, not the machine's uptime.

The fit that kills itself runs in its own process (the kill is the point); the resume runs in this process.
"""

from __future__ import annotations

import csv
import re
import socket
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_cli, run_in_process, write_yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from lighter.run.logs import _after_existing_events

PROJECT = textwrap.dedent(
    """\
    import os
    import signal

    import pytorch_lightning as pl
    import torch
    from torch.utils.data import TensorDataset


    def toy(n=48, seed=0):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 4, generator=g)
        return TensorDataset(x, (x.sum(1) > 0).long())


    class KillAt(pl.Callback):
        \"\"\"SIGKILLs this process when training step `step` has finished: no handler runs, nothing is saved.\"\"\"

        def __init__(self, step=None):
            self.step = step

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == self.step:
                os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _config(root: Path) -> Path:
    (root / "proj").mkdir()
    (root / "proj" / "__init__.py").write_text(PROJECT)
    data = {"_target_": "torch.utils.data.DataLoader", "dataset": {"_target_": "project.toy"}, "batch_size": 8}
    # Both loggers write into one run directory: TensorBoard's listed first gives it, the CSV logger names it too.
    logs = {"save_dir": "logs", "name": "toy", "version": "run"}
    config = {
        "project": "./proj",
        "seed": 0,
        "trainer": {
            "_target_": "pytorch_lightning.Trainer",
            "max_epochs": 3,
            "accelerator": "cpu",
            "log_every_n_steps": 1,
            "enable_model_summary": False,
            "logger": [
                {"_target_": "pytorch_lightning.loggers.TensorBoardLogger", **logs},
                {"_target_": "pytorch_lightning.loggers.CSVLogger", **logs},
            ],
            "callbacks": [
                {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True},
                {"_target_": "project.KillAt"},
            ],
        },
        "system": {
            "_target_": "lighter.System",
            "model": {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 2},
            "criterion": {"_target_": "torch.nn.CrossEntropyLoss"},
            "optimizer": {"_target_": "torch.optim.SGD", "params": "$@system::model.parameters()", "lr": 0.1},
            "dataloaders": {"train": {**data, "shuffle": True}, "val": data},
        },
    }
    return write_yaml(root / "config.yaml", config)


def _steps(run_dir: Path) -> dict[str, list[int]]:
    """Each scalar's and text's steps, as TensorBoard shows them (events a restart purged are left out)."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = events.Tags()
    steps = {tag: [e.step for e in events.Scalars(tag)] for tag in tags["scalars"]}
    steps.update({tag: [e.step for e in events.Tensors(tag)] for tag in tags["tensors"]})
    return steps


@pytest.mark.slow
def test_a_fit_killed_mid_epoch_keeps_its_csv_rows_and_resumes_without_a_tensorboard_step_twice(tmp_path):
    config = _config(tmp_path)
    run_dir = tmp_path / "logs" / "toy" / "run"
    killed = run_cli(["fit", str(config), "trainer::callbacks::1::step=9"], tmp_path)  # epoch 1's 3rd of 6 steps
    assert killed.returncode == -9, killed.stderr[-3000:]

    with (run_dir / "metrics.csv").open() as f:
        on_disk = list(csv.DictReader(f))
    assert {int(r["step"]) for r in on_disk if r["train/loss/step"] and r["epoch"] == "0"} == set(range(6))
    assert [r["epoch"] for r in on_disk if r["val/loss/epoch"]] == ["0"]  # epoch 0's rows, flushed when it ended
    assert [r["epoch"] for r in on_disk if r["train/loss/epoch"]] == ["0"]

    resumed = run_in_process(["resume", str(run_dir), "trainer::callbacks::1::step=null"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Restoring states from the checkpoint path at {run_dir / 'checkpoints' / 'last.ckpt'}" in resumed.stderr
    times = re.findall(r"^Epoch [12]/2  (\S+)", resumed.stdout, re.MULTILINE)
    assert times and all(re.fullmatch(r"\d+(\.\d+)?s", t) for t in times), resumed.stdout  # seconds, not uptime

    steps = _steps(run_dir)
    assert steps["train/loss/step"] == list(range(18))  # 0-5 of the killed run, 6-17 of the resumed one: once each
    assert steps["val/loss/epoch"] == steps["train/loss/epoch"] == [5, 11, 17]
    assert steps["hp_metric"] == [0]  # Lightning's placeholder, logged once, by the first run
    assert steps["config.yaml/text_summary"] == [0, 6]  # each config at the step its run started from
    # Lightning logs `epoch` with every step row and with both epoch rows (validation's, training's) at the epoch's
    # last step, which so carries it three times.
    assert Counter(steps["epoch"]) == Counter([*range(18), *[5, 11, 17] * 2])
    twice = {tag: s for tag, s in steps.items() if tag != "epoch" and len(set(s)) != len(s)}
    assert twice == {}


def test_a_resumed_tensorboard_file_sorts_after_the_file_it_continues_even_within_the_same_second(tmp_path):
    """TensorBoard reads event files in name order (second made, host, pid): a file of the same second from a process
    whose pid sorts later must not come after the resumed run's, or its events would follow the purge meant for them."""
    earlier = tmp_path / f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.99999999.0"
    earlier.write_bytes(b"")
    _after_existing_events(tmp_path)
    writer = SummaryWriter(str(tmp_path), purge_step=6)
    writer.close()

    assert sorted(p.name for p in tmp_path.glob("events.out.tfevents.*"))[0] == earlier.name
