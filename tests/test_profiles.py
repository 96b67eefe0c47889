"""Profiles: `--profile NAME` / LIGHTER_PROFILE merges a user's partial config between the configs and the overrides;
`lighter profile list|show`; what a profile sets is never recorded, and the same profile restores it on a rerun."""

from pathlib import Path

import pytest
import yaml
from conftest import classifier_config, write_yaml

from lighter.engine import prepare
from lighter.errors import ConfigError


@pytest.fixture
def profiles(tmp_path, monkeypatch) -> Path:
    """An empty profile folder, named by LIGHTER_PROFILE_DIR (the in-process CLI reads it)."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    monkeypatch.setenv("LIGHTER_PROFILE_DIR", str(folder))
    monkeypatch.delenv("LIGHTER_PROFILE", raising=False)
    return folder


def write_profile(folder: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = folder / name
    path.write_text(text)
    path.chmod(mode)
    return path


ALICE = """\
trainer:
  max_epochs: 2
  logger:
    name: alice-runs
vars:
  comet_api_key: alice-key-0123456789
  workspace: alice-team
"""


@pytest.fixture
def cfg(tmp_path) -> Path:
    config = classifier_config(tmp_path)
    config["vars"] = {"workspace": "shared-team"}
    return write_yaml(tmp_path / "config.yaml", config)


def test_profile_list_names_every_profile(profiles, tmp_path, cli):
    write_profile(profiles, "alice.yaml", ALICE)
    write_profile(profiles, "bob.yml", "trainer: {accelerator: cpu}\n")
    (profiles / "notes.txt").write_text("not a profile")
    done = cli(["profile", "list"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"# profiles in {profiles}", "alice", "bob"]


def test_profile_list_of_an_empty_folder_says_how_to_make_one(profiles, tmp_path, cli):
    done = cli(["profile", "list"], cwd=tmp_path)
    assert done.returncode == 0
    assert f"No profiles in {profiles}." in done.stdout
    assert "NAME.yaml" in done.stdout and "chmod 600" in done.stdout


def test_profile_show_masks_secret_values(profiles, tmp_path, cli):
    path = write_profile(profiles, "alice.yaml", ALICE + "  db:\n    Password: hunter2-long\n")
    done = cli(["profile", "show", "alice"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"# {path}\n")
    shown = yaml.safe_load(done.stdout)
    assert shown["vars"] == {"comet_api_key": "<secret>", "workspace": "alice-team", "db": {"Password": "<secret>"}}
    assert shown["trainer"] == {"max_epochs": 2, "logger": {"name": "alice-runs"}}
    assert "alice-key" not in done.stdout and "hunter2" not in done.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(["profile", "show", "alcie"], {}, id="profile-show"),
        pytest.param(["fit", "config.yaml", "--profile", "alcie"], {}, id="fit-option"),
        pytest.param(["show", "config.yaml", "--profile=alcie"], {}, id="show-option"),
        pytest.param(["fit", "config.yaml"], {"LIGHTER_PROFILE": "alcie"}, id="environment"),
    ],
)
def test_a_missing_profile_lists_the_existing_ones(profiles, cfg, tmp_path, monkeypatch, args, env, cli):
    write_profile(profiles, "alice.yaml", ALICE)
    write_profile(profiles, "bob.yaml", "{}\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = cli(args, cwd=tmp_path)
    assert done.returncode == 2
    assert f"lighter: error: profile 'alcie' does not exist in {profiles} (LIGHTER_PROFILE_DIR)" in done.stderr
    assert "Did you mean 'alice'? Profiles in that folder: alice, bob." in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_profile_without_any_profiles_says_where_to_create_it(profiles, tmp_path, cli):
    done = cli(["profile", "show", "alice"], cwd=tmp_path)
    assert done.returncode == 2
    assert f"There are no profiles yet: create {profiles / 'alice.yaml'} (a partial config)" in done.stderr


def test_a_profile_name_is_not_a_path(profiles, tmp_path, cli):
    done = cli(["profile", "show", "../secrets"], cwd=tmp_path)
    assert done.returncode == 2
    assert "'../secrets' is not a profile name" in done.stderr


@pytest.mark.parametrize(
    ("mode", "warned"),
    [
        pytest.param(0o644, True, id="world-readable"),
        pytest.param(0o640, True, id="group-readable"),
        pytest.param(0o600, False, id="owner-only"),
    ],
)
def test_a_profile_other_users_can_read_gets_a_warning(profiles, tmp_path, mode, warned, cli):
    path = write_profile(profiles, "alice.yaml", ALICE, mode=mode)
    done = cli(["profile", "show", "alice"], cwd=tmp_path)
    assert done.returncode == 0
    warning = f"lighter: warning: profile {path} can be read by other users"
    assert (warning in done.stderr) is warned
    if warned:
        assert f"run `chmod 600 {path}`" in done.stderr


def test_a_profile_merges_after_the_configs_and_before_the_overrides(profiles, cfg):
    write_profile(profiles, "alice.yaml", ALICE)
    config = prepare("fit", [str(cfg)], ["trainer::max_epochs=5"], profile="alice").config
    assert config["trainer"]["max_epochs"] == 5  # the override wins over the profile
    assert config["trainer"]["logger"]["name"] == "alice-runs"  # the profile wins over the config
    assert config["trainer"]["logger"]["save_dir"] == str(cfg.parent)  # merged into, not replaced
    assert config["vars"] == {"workspace": "alice-team", "comet_api_key": "alice-key-0123456789"}


def test_the_environment_names_the_profile_and_the_option_wins(profiles, cfg, monkeypatch):
    write_profile(profiles, "alice.yaml", ALICE)
    write_profile(profiles, "bob.yaml", "trainer: {max_epochs: 7}\n")
    monkeypatch.setenv("LIGHTER_PROFILE", "alice")
    assert prepare("fit", [str(cfg)]).config["trainer"]["max_epochs"] == 2
    assert prepare("fit", [str(cfg)], profile="bob").config["trainer"]["max_epochs"] == 7


def test_a_broken_profile_names_its_file_and_line(profiles, cfg):
    path = write_profile(profiles, "alice.yaml", "trainer:\n  max_epochs: [1\n")
    with pytest.raises(ConfigError, match="YAML syntax error") as err:
        prepare("fit", [str(cfg)], profile="alice")
    assert err.value.location.file == str(path)


def test_show_masks_what_the_profile_set(profiles, cfg, tmp_path, cli):
    write_profile(profiles, "alice.yaml", ALICE)
    done = cli(["show", "config.yaml", "--profile", "alice"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["trainer"]["max_epochs"] == "<profile alice>"
    assert shown["trainer"]["logger"]["name"] == "<profile alice>"
    assert shown["vars"] == {"workspace": "<profile alice>", "comet_api_key": "<profile alice>"}
    assert "alice-key" not in done.stdout and "alice-team" not in done.stdout


def test_a_recorded_config_reruns_with_the_same_profile(profiles, cfg, tmp_path, cli):
    write_profile(profiles, "alice.yaml", ALICE)
    done = cli(["fit", "config.yaml", "--profile", "alice"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "alice-runs" / "version_0"
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert recorded["trainer"]["max_epochs"] == "<profile alice>"
    assert recorded["vars"]["comet_api_key"] == "<profile alice>"

    again = cli(["fit", str(run_dir / "config.yaml"), "--profile", "alice"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "alice-runs" / "version_1" / "config.yaml").is_file()  # the logger's name came back

    bare = cli(["fit", str(run_dir / "config.yaml")], cwd=tmp_path)
    assert bare.returncode == 2
    assert "holds '<profile alice>': the value came from profile 'alice' and lighter did not record it" in bare.stderr
    assert "Run with --profile alice (or LIGHTER_PROFILE=alice)" in bare.stderr


def test_a_secret_from_the_config_must_be_supplied_again(profiles, tmp_path, cli):
    config = classifier_config(tmp_path)
    config["trainer"]["logger"]["name"] = "runs"
    config["vars"] = {"hub": {"token": "hub-token-0123456789"}}
    config["system"]["model"]["bias"] = "$@vars::hub::token != ''"  # the run uses it
    write_yaml(tmp_path / "config.yaml", config)
    assert cli(["fit", "config.yaml"], cwd=tmp_path).returncode == 0
    recorded = tmp_path / "runs" / "version_0" / "config.yaml"
    assert yaml.safe_load(recorded.read_text())["vars"]["hub"]["token"] == "<secret>"

    again = cli(["fit", str(recorded)], cwd=tmp_path)
    assert again.returncode == 2
    assert "vars::hub::token: holds '<secret>': a secret that lighter did not record" in again.stderr
    assert f"at {recorded}:" in again.stderr
    assert "Give it in a profile (--profile NAME), on the command line" in again.stderr

    given = cli(["fit", str(recorded), "vars::hub::token=hub-token-0123456789"], cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    record = yaml.safe_load((tmp_path / "runs" / "version_1" / "run.yaml").read_text())
    assert "hub-token" not in record["command"] and "vars::hub::token=<secret>" in record["command"]


def test_a_secret_given_to_resume_is_masked_in_the_recorded_resume(profiles, tmp_path, cli):
    config = classifier_config(tmp_path)
    config["trainer"]["logger"]["name"] = "runs"
    config["vars"] = {"hub": {"token": "hub-token-0123456789"}}
    config["system"]["model"]["bias"] = "$@vars::hub::token != ''"
    config["trainer"]["enable_checkpointing"] = True
    write_yaml(tmp_path / "config.yaml", config)
    assert cli(["fit", "config.yaml"], cwd=tmp_path).returncode == 0
    run_dir = tmp_path / "runs" / "version_0"

    token = "vars::hub::token=hub-token-0123456789"
    resumed = cli(["resume", str(run_dir), token, "trainer::max_epochs=2"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    [entry] = yaml.safe_load((run_dir / "run.yaml").read_text())["resumes"]
    assert entry["command"] == f"lighter resume {run_dir} vars::hub::token=<secret> trainer::max_epochs=2"


def test_a_profile_may_set_flat_key_paths(profiles, cfg):
    write_profile(profiles, "flat.yaml", "trainer::max_epochs: 4\nvars#workspace: flat-team\n")
    experiment = prepare("fit", [str(cfg)], profile="flat")
    assert experiment.config["trainer"]["max_epochs"] == 4
    masked = experiment.secrets.mask(experiment.config)
    assert masked["trainer"]["max_epochs"] == "<profile flat>"
    assert masked["vars"]["workspace"] == "<profile flat>"
