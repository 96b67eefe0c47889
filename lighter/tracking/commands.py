"""`lighter profile list` and `lighter profile show NAME`: what the profiles hold, secrets masked."""

from __future__ import annotations

from lighter.config.loader import read_yaml
from lighter.run.files import dump
from lighter.tracking.profiles import PROFILE_DIR_ENV, find_profile, list_profiles, profile_dir
from lighter.tracking.secrets import find_secrets


def list_text() -> str:
    folder = profile_dir()
    names = list_profiles()
    if not names:
        return (
            f"No profiles in {folder}.\n"
            f"Create {folder}/NAME.yaml (a partial config; chmod 600 it), or point {PROFILE_DIR_ENV} elsewhere."
        )
    return "\n".join([f"# profiles in {folder}", *names])


def show_text(name: str) -> str:
    """The profile's YAML with every secret-named value masked, under a comment naming its file."""
    path = find_profile(str(name))
    data, _ = read_yaml(path)
    return f"# {path}\n" + dump(find_secrets(data).mask(data))
