"""The user's profiles: partial configs kept outside the shared YAML (API keys, workspaces, one's own accelerator).

`--profile NAME` (or `LIGHTER_PROFILE=NAME`) merges `NAME.yaml` from `~/.config/lighter/profiles/` (or
`LIGHTER_PROFILE_DIR`) after the config files and before the command-line overrides. Everything a profile sets
is masked wherever lighter records the config (`lighter.tracking.secrets`).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from lighter.errors import ConfigError, did_you_mean
from lighter.run.files import process_rank

PROFILE_ENV = "LIGHTER_PROFILE"
PROFILE_DIR_ENV = "LIGHTER_PROFILE_DIR"
DEFAULT_DIR = Path("~/.config/lighter/profiles")
SUFFIXES = (".yaml", ".yml")


def profile_dir() -> Path:
    return Path(os.environ.get(PROFILE_DIR_ENV) or DEFAULT_DIR).expanduser()


def list_profiles() -> list[str]:
    """The names of the profiles in the profile folder, sorted."""
    folder = profile_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def chosen(name: str | None) -> str | None:
    """The profile a command uses: the one named on the command line, else `LIGHTER_PROFILE`, else none."""
    if name is None or name == "":
        name = os.environ.get(PROFILE_ENV) or None
    return None if name is None else str(name)


def find_profile(name: str) -> Path:
    """The file of profile `name`; a missing one is an error that lists the profiles that exist."""
    folder = profile_dir()
    if "/" in name or name.startswith("."):
        raise ConfigError(
            f"'{name}' is not a profile name",
            suggestion=f"Name a file in {folder} without its .yaml suffix, e.g. --profile alice for alice.yaml.",
        )
    for suffix in SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            warn_if_readable(path)
            return path
    existing = list_profiles()
    if existing:
        hint = did_you_mean(name, existing, fallback=None)
        listing = "Profiles in that folder: " + ", ".join(existing) + "."
        suggestion = f"{hint} {listing}" if hint else listing
    else:
        suggestion = f"There are no profiles yet: create {folder / name}.yaml (a partial config), then chmod 600 it."
    where = f"{folder} ({PROFILE_DIR_ENV})" if os.environ.get(PROFILE_DIR_ENV) else str(folder)
    raise ConfigError(f"profile '{name}' does not exist in {where}", suggestion=suggestion)


def warn_if_readable(path: Path) -> None:
    """A profile holds credentials: say so when other users can read it."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH) and process_rank() == 0:
        print(
            f"lighter: warning: profile {path} can be read by other users (mode {stat.filemode(mode)}); "
            f"run `chmod 600 {path}`",
            file=sys.stderr,
        )
