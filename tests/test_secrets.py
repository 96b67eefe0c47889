"""Which keys are secret, what gets masked, how a config becomes flat hyperparameters, and the errors and warnings
about trackers that are raised before anything is built."""

import sys

import pytest
from conftest import classifier_config, write_yaml

from lighter.engine import prepare
from lighter.errors import ConfigError
from lighter.tracking.hparams import MAX_NAME, MAX_VALUE, flatten
from lighter.tracking.secrets import SECRET_MARKER, find_secrets, is_secret_key


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        pytest.param("api_key", True, id="api_key"),
        pytest.param("apiKey", True, id="camel"),
        pytest.param("COMET_API_KEY", True, id="upper"),
        pytest.param("api-key", True, id="kebab"),
        pytest.param("apikey", True, id="one-word"),
        pytest.param("hf_token", True, id="token"),
        pytest.param("Password", True, id="password"),
        pytest.param("client_secret", True, id="secret"),
        pytest.param("aws_secret_access_key", True, id="aws"),
        pytest.param("access_key", True, id="access_key"),
        pytest.param("private_key", True, id="private_key"),
        pytest.param("credentials", True, id="credentials"),
        pytest.param("tokenizer", False, id="tokenizer"),
        pytest.param("max_tokens", False, id="max_tokens"),
        pytest.param("experiment_key", False, id="experiment_key"),
        pytest.param("key", False, id="key"),
        pytest.param("monkey", False, id="monkey"),
        pytest.param("author", False, id="author"),
        pytest.param("secretary", False, id="secretary"),
        pytest.param("comet_key", True, id="service-key"),
        pytest.param("image_key", False, id="a-key-that-names-a-thing"),
        pytest.param("experiment_key", False, id="comet-experiment-key"),
        pytest.param(0, False, id="list-index"),
    ],
)
def test_secret_key_names(name, secret):
    assert is_secret_key(name) is secret


def test_masking_replaces_secret_values_and_keeps_what_holds_none():
    config = {
        "vars": {"comet": "abcdef123456", "empty_token": None},
        "trainer": {
            "logger": {
                "api_key": "@vars::comet",  # a reference: its target is masked instead
                "token": "$os.environ['HF_TOKEN']",  # reads the environment: no secret in it
                "auth": {"user": "me", "password": "hunter2-long"},
                "name": "run-abcdef123456",  # the secret inside another value is scrubbed
            }
        },
    }
    masked = find_secrets(config).mask(config)
    assert masked["vars"] == {"comet": SECRET_MARKER, "empty_token": None}
    logger = masked["trainer"]["logger"]
    assert logger["api_key"] == "@vars::comet"
    assert logger["token"] == "$os.environ['HF_TOKEN']"
    assert logger["auth"] == SECRET_MARKER
    assert logger["name"] == f"run-{SECRET_MARKER}"
    assert config["trainer"]["logger"]["auth"]["password"] == "hunter2-long"  # the original is left alone


def test_profile_keys_get_the_profile_marker():
    config = {"trainer": {"accelerator": "gpu", "logger": {"api_key": "k-0123456789"}}}
    secrets = find_secrets(config, {"trainer::accelerator", "trainer::logger::api_key"}, "alice")
    masked = secrets.mask(config)
    assert masked == {"trainer": {"accelerator": "<profile alice>", "logger": {"api_key": "<profile alice>"}}}
    assert secrets.scrub("lighter fit c.yaml trainer::logger::api_key=k-0123456789") == (
        f"lighter fit c.yaml trainer::logger::api_key={SECRET_MARKER}"
    )


def test_a_numeric_secret_is_masked_and_scrubbed_as_typed():
    config = {"vars": {"pin_password": 98765432, "port_token": 0.5, "flag_secret": True}}
    secrets = find_secrets(config)
    assert secrets.mask(config)["vars"]["pin_password"] == SECRET_MARKER
    assert secrets.scrub("lighter fit c.yaml vars::pin_password=98765432") == (
        f"lighter fit c.yaml vars::pin_password={SECRET_MARKER}"
    )
    assert secrets.values == ("98765432",)  # 0.5 is too short to scrub from text; a bool is no secret string


@pytest.mark.parametrize(
    ("config", "flat"),
    [
        pytest.param({"a": {"b": 1, "c": [True, None]}}, {"a/b": 1, "a/c/0": True, "a/c/1": "null"}, id="nested"),
        pytest.param({"a": {}, "b": []}, {"a": "{}", "b": "[]"}, id="empty"),
        pytest.param({"params": "$@system::model.parameters()"}, {"params": "$@system::model.parameters()"}, id="expr"),
        pytest.param({"a::b": 1, "x@y": 2}, {"a__b": 1, "x_y": 2}, id="unsafe-characters"),
    ],
)
def test_flatten(config, flat):
    assert flatten(config) == flat


def test_flatten_keeps_names_and_values_within_every_trackers_limits():
    long = {"k" * 200: {"a" * 100: 1, "b" * 100: 2}, "v": "x" * 1000}
    flat = flatten(long)
    assert len(flat) == 3  # long names stay unique
    assert all(len(name) <= MAX_NAME for name in flat)
    assert len(flat["v"]) == MAX_VALUE and flat["v"].endswith("...")


def logger_config(tmp_path, logger):
    config = classifier_config(tmp_path)
    config["trainer"]["logger"] = [config["trainer"]["logger"], logger]
    return write_yaml(tmp_path / "config.yaml", config)


@pytest.mark.parametrize(
    ("module", "target", "extra"),
    [
        pytest.param("wandb", "pytorch_lightning.loggers.WandbLogger", "wandb", id="wandb"),
        pytest.param("comet_ml", "lighter.tracking.CometLogger", "comet-ml", id="comet"),
        pytest.param("mlflow", "pytorch_lightning.loggers.mlflow.MLFlowLogger", "mlflow", id="mlflow"),
    ],
)
def test_a_tracker_that_is_not_installed_names_the_extra(tmp_path, monkeypatch, module, target, extra):
    cfg = logger_config(tmp_path, {"_target_": target})
    monkeypatch.setitem(sys.modules, module, None)  # how Python marks a module as not importable
    with pytest.raises(ConfigError) as err:
        prepare("fit", [str(cfg)])
    name = target.rsplit(".", 1)[1]
    assert err.value.key == "trainer::logger::1::_target_"
    assert err.value.message == f"{name} needs the '{module}' package, which is not installed"
    assert f"pip install 'lighter[{extra}]'" in err.value.suggestion
    assert "'lighter[tracking]'" in err.value.suggestion
    assert err.value.location.file == str(cfg)


def test_lightnings_comet_logger_offline_gets_a_warning(tmp_path, capsys):
    cfg = logger_config(tmp_path, {"_target_": "pytorch_lightning.loggers.CometLogger", "online": False})
    prepare("fit", [str(cfg)])
    warning = capsys.readouterr().err
    assert "trainer::logger::1::online: false makes Lightning's CometLogger log nothing at all" in warning
    assert "lighter.tracking.CometLogger" in warning and "COMET_START_ONLINE=false" in warning
