"""Freezer: what it selects, that frozen parameters really stay put, when it lets go, and how it refuses."""

from __future__ import annotations

import logging
import sys
import textwrap

import pytest
import pytorch_lightning as pl
from conftest import classifier_config, write_yaml
from torch import nn

from lighter import System, engine
from lighter.callbacks import Freezer
from lighter.errors import ConfigError

NET = '''
    """A two-part net, and a callback that notes which parameters each training step changed."""

    import pytorch_lightning as pl
    import torch
    from torch import nn

    STEPS = []  # per step: {parameter name: changed?}


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.features(x))


    class StepProbe(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.before = {n: p.detach().clone() for n, p in pl_module.model.named_parameters()}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            now = dict(pl_module.model.named_parameters())
            STEPS.append({n: not torch.equal(now[n], old) for n, old in self.before.items()})
'''


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
        self.head = nn.Linear(8, 3)


FEATURES = {"features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias"}
HEAD = {"head.weight", "head.bias"}


def frozen_after_setup(freezer: Freezer, trainer: pl.Trainer | None = None) -> set[str]:
    system = System(model=Net())
    freezer.setup(trainer or pl.Trainer(logger=False, enable_progress_bar=False), system, "fit")
    return {n for n, p in system.model.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"names": ["head.weight"]}, {"head.weight"}, id="names"),
        pytest.param({"names": "head.weight"}, {"head.weight"}, id="one-name-as-str"),
        pytest.param({"names": ["model.head.weight"]}, {"head.weight"}, id="names-with-model-prefix"),
        pytest.param({"name_starts_with": ["features."]}, FEATURES, id="prefix"),
        pytest.param({"name_starts_with": ["model.features."]}, FEATURES, id="prefix-with-model-prefix"),
        pytest.param({"name_starts_with": ["model."]}, FEATURES | HEAD, id="whole-model"),
        pytest.param(
            {"names": ["head.bias"], "name_starts_with": ["features.2"]},
            {"head.bias", "features.2.weight", "features.2.bias"},
            id="names-and-prefix",
        ),
        pytest.param(
            {"name_starts_with": ["features."], "except_names": ["features.0.bias"]},
            FEATURES - {"features.0.bias"},
            id="except-names",
        ),
        pytest.param(
            {"name_starts_with": ["features."], "except_name_starts_with": ["model.features.2"]},
            {"features.0.weight", "features.0.bias"},
            id="except-prefix",
        ),
    ],
)
def test_selection(kwargs, expected):
    freezer = Freezer(**kwargs)
    assert frozen_after_setup(freezer) == expected
    assert set(freezer.frozen) == expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"names": ["head.weigth"]}, r"names: 'head.weigth' matches no.*\n.*'head.weight'", id="typo"),
        pytest.param({"name_starts_with": ["feature."]}, r"'feature.' matches no.*\n.*'features.'", id="prefix-typo"),
        pytest.param(
            {"names": ["zzz"]},
            "Names are relative to system::model; its parameters include 'features.0.weight'",
            id="no-close-name",
        ),
        pytest.param(
            {"names": ["head.bias"], "except_names": ["head.bais"]}, "except_names: 'head.bais'", id="except-typo"
        ),
        pytest.param(
            {"name_starts_with": ["head."], "except_name_starts_with": ["head"]},
            r"exceptions \(head\) remove every parameter",
            id="everything-excepted",
        ),
    ],
)
def test_selection_errors_name_the_closest_parameters(kwargs, match):
    with pytest.raises(ConfigError, match=match) as err:
        frozen_after_setup(Freezer(**kwargs))
    assert err.value.key == "trainer::callbacks"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({}, ValueError, "selects nothing: give `names`, `name_starts_with`", id="nothing"),
        pytest.param({"names": ["a"], "until_step": 2, "until_epoch": 1}, ValueError, "give one of them", id="both"),
        pytest.param({"names": ["a"], "until_step": 0}, ValueError, "until_step must be a positive int", id="step-0"),
        pytest.param({"names": ["a"], "until_epoch": "2"}, ValueError, "until_epoch must be a positive", id="str"),
        pytest.param({"names": ["a", 3]}, TypeError, "names must be a parameter name or a list", id="not-names"),
    ],
)
def test_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Freezer(**kwargs)


def test_unfreezing_under_ddp_is_refused():
    # DDP decides which parameters it averages when it wraps the model, after this hook; a Trainer for two
    # processes says so without launching them.
    trainer = pl.Trainer(strategy="ddp", devices=2, accelerator="cpu", logger=False)
    with pytest.raises(ConfigError, match="cannot run on 2 processes") as err:
        frozen_after_setup(Freezer(names=["head.weight"], until_epoch=1), trainer)
    assert "Freeze for the whole run" in err.value.suggestion
    assert frozen_after_setup(Freezer(names=["head.weight"]), trainer) == {"head.weight"}  # frozen for good: fine


def test_other_stages_leave_the_model_alone():
    system = System(model=Net())
    Freezer(names=["head.weight"]).setup(pl.Trainer(logger=False), system, "validate")
    assert all(p.requires_grad for p in system.model.parameters())


# ---- a real fit: frozen parameters do not move, with momentum and weight decay, until they are let go ----

SGD = {"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}
ADAMW = {"_target_": "torch.optim.AdamW", "lr": 0.1, "weight_decay": 0.5}
N_STEPS = 4  # 16 samples in batches of 8, two epochs


@pytest.mark.parametrize(
    ("optimizer", "until", "frozen_steps"),
    [
        pytest.param(SGD, {}, [True] * 4, id="sgd-momentum-decay-whole-run"),
        pytest.param(ADAMW, {}, [True] * 4, id="adamw-decay-whole-run"),
        pytest.param(SGD, {"until_epoch": 1}, [True, True, False, False], id="until-epoch-1"),
        pytest.param(ADAMW, {"until_step": 3}, [True, True, True, False], id="until-step-3"),
    ],
)
def test_fit_keeps_frozen_parameters_fixed(tmp_path, caplog, optimizer, until, frozen_steps):
    config = classifier_config(tmp_path, epochs=2)
    (tmp_path / "project" / "nets.py").write_text(textwrap.dedent(NET).lstrip())
    config["system"]["model"] = {"_target_": "project.nets.Net"}
    config["system"]["optimizer"] = {**optimizer, "params": "$@system::model.parameters()"}
    freezer = {"_target_": "lighter.callbacks.Freezer", "name_starts_with": "features.", **until}
    config["trainer"]["callbacks"] += [freezer, {"_target_": "project.nets.StepProbe"}]
    caplog.set_level(logging.INFO, logger="lighter")

    engine.call_stage("fit", [str(write_yaml(tmp_path / "config.yaml", config))])

    steps = sys.modules["project.nets"].STEPS
    assert len(steps) == N_STEPS
    for step, frozen in zip(steps, frozen_steps, strict=True):
        assert all(step[name] is not frozen for name in FEATURES), steps
        assert all(step[name] for name in HEAD)  # the rest trains every step
    assert "Freezer: froze 4 parameter tensors (112 values)" in caplog.text
    assert "features.0.weight, features.0.bias, features.2.weight, features.2.bias" in caplog.text
    if until:
        when = "epoch 1" if "until_epoch" in until else "step 3"
        assert f"Freezer: unfroze 4 parameter tensors at {when}" in caplog.text


def test_freezer_hooks_are_lightning_hooks():
    # A misspelt hook would never be called; every hook-like method must exist on Lightning's Callback.
    hooks = [name for name in vars(Freezer) if name.startswith("on_") or name in ("setup", "teardown")]
    assert hooks and all(callable(getattr(pl.Callback, name, None)) for name in hooks), hooks
