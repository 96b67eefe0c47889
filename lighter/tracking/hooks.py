"""The few calls the runner makes into tracking: choose the profile, find the secrets, check, hand off."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lighter.config.loader import LoadedConfig
from lighter.tracking import loggers
from lighter.tracking.profiles import chosen, find_profile
from lighter.tracking.secrets import Secrets, check_restored, find_secrets


def profile_file(name: str | None) -> Path | None:
    """The file of the profile named on the command line or in LIGHTER_PROFILE, if any."""
    name = chosen(name)
    return None if name is None else find_profile(name)


def find(config: dict[str, Any], loaded: LoadedConfig) -> Secrets:
    return find_secrets(config, loaded.profile_keys, loaded.profile)


def check(pruned: dict[str, Any], loaded: LoadedConfig) -> None:
    """Before anything is built: no marker stands in for a value, every logger's tracker is installed."""
    check_restored(pruned, loaded)
    loggers.check_installed(pruned, loaded)
    for key in loggers.comet_online_false(pruned):
        print(
            f"lighter: warning: {key}: false makes Lightning's CometLogger log nothing at all. To log offline, "
            "use `_target_: lighter.tracking.CometLogger` (same arguments), or leave `online` unset and set "
            "COMET_START_ONLINE=false.",
            file=sys.stderr,
        )


def scrub_argv(secrets: Secrets) -> None:
    """Trackers record the command line (W&B, Comet): a secret typed as an override must not reach them."""
    sys.argv[:] = [secrets.scrub(arg) for arg in sys.argv]


def handoff(secrets: Secrets, config: dict[str, Any], recorder: Any) -> Any:
    """The callback that gives the masked config to the loggers and notes the trackers in `recorder`'s run.yaml."""
    from lighter.tracking.callback import TrackerHandOff  # lazy: imports Lightning; `lighter show` must not

    return TrackerHandOff(secrets.mask(config), recorder)
