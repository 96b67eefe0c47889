"""load_weights and replace_layer: by hand, from a real Lightning checkpoint, and as `_target_`s in YAML."""

from __future__ import annotations

import logging
import textwrap

import pytest
import torch
from conftest import captured, classifier_config, write_yaml
from torch import nn

from lighter import engine
from lighter.utils import load_weights, replace_layer

NETS = """
    from torch import nn


    class Net(nn.Module):
        def __init__(self, classes=3):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
            self.head = nn.Linear(8, classes)

        def forward(self, x):
            return self.head(self.features(x))
"""


class Net(nn.Module):
    def __init__(self, classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
        self.head = nn.Linear(8, classes)


def trained() -> Net:
    torch.manual_seed(1)
    return Net()


def same(a: nn.Module, b: nn.Module, prefix: str = "") -> bool:
    ours = {k: v for k, v in a.state_dict().items() if k.startswith(prefix)}
    theirs = b.state_dict()
    return bool(ours) and all(torch.equal(v, theirs[k]) for k, v in ours.items())


def save(tmp_path, state) -> str:
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    return str(path)


# ---- load_weights ---------------------------------------------------------------------------------------


def _lightning(net: Net) -> dict:
    return {"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}, "epoch": 3, "global_step": 9}


@pytest.mark.parametrize(
    ("make", "kwargs", "loaded_prefix", "kept_prefix"),
    [
        pytest.param(lambda n: n.state_dict(), {}, "", None, id="plain-state-dict"),
        pytest.param(_lightning, {"strip_prefix": "model."}, "", None, id="lightning-strip-prefix"),
        pytest.param(
            lambda n: {k.replace("features.", "backbone."): v for k, v in n.state_dict().items()},
            {"remap": {"backbone.": "features."}},
            "",
            None,
            id="remap-prefix",
        ),
        pytest.param(
            lambda n: n.features.state_dict(), {"remap": {"": "features."}}, "features.", "head.", id="add-prefix"
        ),
        pytest.param(_lightning, {"strip_prefix": "model.", "skip": ["head"]}, "features.", "head.", id="skip-layer"),
        pytest.param(
            _lightning, {"strip_prefix": "model.", "skip": "features.2"}, "head.", "features.2.", id="skip-one-as-str"
        ),
    ],
)
def test_load_weights(tmp_path, make, kwargs, loaded_prefix, kept_prefix):
    source, model = trained(), Net()
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    out = load_weights(model, save(tmp_path, make(source)), **kwargs)

    assert out is model
    assert same(model, source, loaded_prefix)
    if kept_prefix:
        assert all(torch.equal(v, initial[k]) for k, v in model.state_dict().items() if k.startswith(kept_prefix))


def test_load_weights_from_a_real_lightning_checkpoint_and_in_yaml(tmp_path):
    # Train, save a real checkpoint, then build a 5-class model from it in YAML: new head, loaded features.
    config = classifier_config(tmp_path)
    (tmp_path / "project" / "nets.py").write_text(textwrap.dedent(NETS).lstrip())
    config["system"]["model"] = {"_target_": "project.nets.Net"}
    engine.call_stage("fit", [str(write_yaml(tmp_path / "fit.yaml", config))])
    trainer, fitted = captured("fit")
    ckpt = tmp_path / "fitted.ckpt"
    trainer.save_checkpoint(ckpt)

    config["system"]["model"] = {
        "_target_": "lighter.utils.replace_layer",
        "model": {
            "_target_": "lighter.utils.load_weights",
            "model": {"_target_": "project.nets.Net"},
            "path": str(ckpt),
            "strip_prefix": "model.",
        },
        "name": "head",
        "layer": {"_target_": "torch.nn.Linear", "in_features": 8, "out_features": 5},
    }
    engine.call_stage("validate", [str(write_yaml(tmp_path / "finetune.yaml", config))])

    _, system = captured("validate")
    assert system.model.head.out_features == 5
    assert same(system.model, fitted.model, "features.")


def test_load_weights_logs_what_it_did(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="lighter")
    state = {**trained().features.state_dict(), "extra.weight": torch.zeros(1)}

    load_weights(Net(), save(tmp_path, state), remap={"0.": "features.0.", "2.": "features.2."})

    assert "loaded 4 of the model's 6 tensors" in caplog.text
    assert "2 model tensors keep their initial values: head.weight, head.bias" in caplog.text
    assert "1 checkpoint tensors were not used: extra.weight" in caplog.text


def test_load_weights_reads_whole_modules_only_when_trusted(tmp_path):
    path = save(tmp_path, trained())
    with pytest.raises(ValueError, match="holds more than tensors.*set `weights_only: false`"):
        load_weights(Net(), path)
    assert same(load_weights(Net(), path, weights_only=False), trained())


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "match"),
    [
        pytest.param(
            _lightning,
            {},
            ValueError,
            r"no tensor .* matches.*Checkpoint keys: model.features.0.weight.*model keys: features.0.weight.*"
            r"behind 'model.': set `strip_prefix: model.`",
            id="forgot-strip-prefix",
        ),
        pytest.param(
            lambda n: n.features.state_dict(),
            {},
            ValueError,
            r"Checkpoint keys: 0.weight.*behind 'features.': set `remap: \{'': features.\}`",
            id="model-has-extra-prefix",
        ),
        pytest.param(
            lambda n: Net(classes=5).state_dict(),
            {},
            ValueError,
            r"2 tensors differ in shape.*head.weight: \(5, 8\) vs \(3, 8\).*add `skip: \['head'\]`",
            id="new-head-shape",
        ),
        pytest.param(
            lambda n: n.state_dict(), {"skip": ["haed"]}, ValueError, "skip: 'haed' is no layer.*'head'", id="skip-typo"
        ),
        pytest.param(
            lambda n: n.features.state_dict(),
            {"remap": {"": "features."}, "strict": True},
            ValueError,
            r"strict.*2 model tensors not in the checkpoint \(head.weight, head.bias\)",
            id="strict-missing",
        ),
        pytest.param(
            lambda n: {"weights": [1, 2]}, {}, ValueError, "neither a Lightning checkpoint nor", id="not-tensors"
        ),
    ],
)
def test_load_weights_errors(tmp_path, make, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_weights(Net(), save(tmp_path, make(trained())), **kwargs)


def test_load_weights_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt does not exist"):
        load_weights(Net(), tmp_path / "nothing.pt")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "is empty (0 bytes)", id="empty"),
        pytest.param(
            b"epoch,loss\n0,1.0\n", "is not a PyTorch file (it starts with neither a zip nor a pickle", id="text"
        ),
        pytest.param("truncated", "is truncated or corrupt (", id="truncated"),
    ],
)
def test_load_weights_names_a_file_that_is_no_checkpoint_and_says_why(tmp_path, content, message):
    path = tmp_path / "weights.pt"
    if content == "truncated":
        torch.save(Net().state_dict(), path)
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        load_weights(Net(), path)
    assert str(err.value).startswith(f"load_weights: {path} {message}")


# ---- replace_layer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "get"),
    [
        pytest.param("head", lambda m: m.head, id="attribute"),
        pytest.param("features.2", lambda m: m.features[2], id="sequential-index"),
        pytest.param("blocks.b.0", lambda m: m.blocks["b"][0], id="moduledict-in-modulelist"),
    ],
)
def test_replace_layer(name, get):
    model = Net()
    model.blocks = nn.ModuleDict({"b": nn.ModuleList([nn.Linear(2, 2)])})
    layer = nn.Linear(8, 5)

    assert replace_layer(model, name, layer) is model
    assert get(model) is layer
    assert name in dict(model.named_modules())


@pytest.mark.parametrize(
    ("name", "layer", "error", "match"),
    [
        pytest.param("haed", nn.Identity(), ValueError, "no layer named 'haed'. Did you mean 'head'", id="typo"),
        pytest.param("features.5", nn.Identity(), ValueError, "'features.5'.*'features.2'", id="index"),
        pytest.param("", nn.Identity(), ValueError, "no layer named ''.*include features", id="empty"),
        pytest.param("head", "Linear", TypeError, "must be a torch.nn.Module, got str", id="not-a-module"),
    ],
)
def test_replace_layer_errors(name, layer, error, match):
    with pytest.raises(error, match=match):
        replace_layer(Net(), name, layer)
