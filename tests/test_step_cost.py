"""What lighter adds to a run's steps and start: one `self.log` per value, each metric updated once a step, no
per-batch hook calls for callbacks that have none, and no import of all of MONAI for a config that uses none of it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import pytorch_lightning as pl
import torch
from conftest import classifier_config, write_yaml
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from lighter import System
from lighter.run.recorder import RunRecorder
from lighter.utils.step_hooks import PER_BATCH_HOOKS, quiet_per_batch


class _CountedAccuracy(MulticlassAccuracy):
    def __init__(self) -> None:
        super().__init__(num_classes=3)
        self.calls = {"update": 0, "compute": 0}

    def update(self, *args, **kwargs):
        self.calls["update"] += 1
        super().update(*args, **kwargs)

    def compute(self):
        self.calls["compute"] += 1
        return super().compute()


class _CountedLogs(System):
    """The System, counting its `self.log` calls; also logs a value of its own, as a user's subclass might."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.logged: list[str] = []

    def log(self, name, value, *args, **kwargs):
        self.logged.append(name)
        super().log(name, value, *args, **kwargs)

    def training_step(self, batch, batch_idx):
        output = super().training_step(batch, batch_idx)
        self.log("mine", 1.0, on_step=True, on_epoch=True)
        return output


def test_one_log_per_value_and_one_metric_update_per_step(tmp_path):
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(8, 4), torch.randint(0, 3, (8,)))
    model = torch.nn.Linear(4, 3)
    accuracy = _CountedAccuracy()
    system = _CountedLogs(
        model=model,
        criterion=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters()),
        metrics={"train": {"acc": accuracy}},
        dataloaders={"train": DataLoader(data, batch_size=4)},
    )
    trainer = pl.Trainer(
        max_epochs=1,
        logger=pl.loggers.CSVLogger(tmp_path),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(system)

    steps = 2
    per_step = ["train/loss", "train/metrics/acc", "mine"]
    epoch_values = ["train/optimizer/Adam/lr", "train/optimizer/Adam/momentum"]
    assert system.logged == epoch_values + per_step * steps
    assert accuracy.calls == {"update": steps, "compute": steps + 1}  # each step's batch value, then the epoch's
    lighter_names = {f"train/{name}/{when}" for name in ("loss", "metrics/acc") for when in ("step", "epoch")}
    assert lighter_names | {"mine_step", "mine_epoch", *epoch_values} <= set(trainer.logged_metrics)
    # A ForkedName's copies are all there is of it; the user's own value keeps Lightning's names, bare one included.
    assert set(trainer.callback_metrics) == lighter_names | {"mine", "mine_step", "mine_epoch", *epoch_values}


@pytest.mark.parametrize(
    ("callback", "kept"),
    [
        pytest.param(RunRecorder, set(), id="run-recorder"),
        pytest.param(
            quiet_per_batch(type("Counts", (pl.Callback,), {"on_train_batch_end": lambda *a: None})),
            {"on_train_batch_end"},
            id="overridden-hook-kept",
        ),
    ],
)
def test_per_batch_hooks_a_callback_does_not_override_are_skipped(callback, kept):
    hooks = {hook for hook in PER_BATCH_HOOKS if callable(getattr(callback, hook))}
    assert hooks == kept
    assert callable(pl.Callback.on_train_batch_end)  # the decorator changes the class it decorates, not Lightning's


# The whole point is what a fresh process imports, so this runs in one: a fit of a config that names no MONAI
# class, then fits whose model is MONAI's, by its dotted `_target_` and by its bare name.
SCRIPT = textwrap.dedent(
    """\
    import json, sys
    from lighter.cli import main

    def fit(path):
        try:
            main(["fit", path])
        except SystemExit as exit:
            assert not exit.code, exit.code
        return {"apps": "monai.apps" in sys.modules, "monai": sum(m.startswith("monai") for m in sys.modules)}

    seen = {name: fit(name + ".yaml") for name in sys.argv[1:]}
    import monai
    seen["version"] = monai.__version__
    print(json.dumps(seen))
    """
)


@pytest.mark.slow
def test_a_config_without_monai_targets_does_not_import_monai(tmp_path):
    config = classifier_config(tmp_path)
    config["trainer"]["logger"] = False
    write_yaml(tmp_path / "plain.yaml", config)
    net = {"in_channels": 4, "out_channels": 3, "hidden_channels": [8]}
    config["system"]["model"] = {"_target_": "monai.networks.nets.FullyConnectedNet", **net}
    write_yaml(tmp_path / "dotted.yaml", config)
    config["system"]["model"] = {"_target_": "FullyConnectedNet", **net}
    write_yaml(tmp_path / "bare.yaml", config)

    # One process: the dotted target is met with MONAI deferred; the bare name's lookup loads all of MONAI
    # first in any case (`load_all`, then MONAI's scan), which is what it finds here too.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "plain", "dotted", "bare"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert not seen["plain"]["apps"]
    assert seen["plain"]["monai"] < 50  # the config engine's modules, of MONAI's 430
    # A MONAI class, dotted or bare, loads all of MONAI as `import monai` does, and the fit runs.
    assert seen["dotted"]["apps"] and seen["dotted"]["monai"] > 300
    assert seen["bare"]["apps"]
    assert seen["version"].count(".") >= 1
