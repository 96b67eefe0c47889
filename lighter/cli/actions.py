"""What each `lighter` command does, given its arguments as typed: the functions the command table names.

Heavy modules load inside each function (lazy: `lighter --help` imports this file and must not import torch).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from lighter.errors import error_line
from lighter.names import Stage

if TYPE_CHECKING:
    from lighter.config.loader import ConfigArgs  # lazy: for the type alone; yaml would slow --help

CONFIG_KEYWORD = "config"  # `--config FILE`, as Lighter's own CLI names the argument


def fail(message: str, code: int = 2, *, quiet: bool = False) -> None:
    """Stop with `lighter: error: MESSAGE` on stderr (unless `quiet`) and exit `code`."""
    if not quiet:
        print(error_line(message), file=sys.stderr)
    raise SystemExit(code)


def _configs(configs: tuple[str, ...], overrides: dict[str, str]) -> ConfigArgs:
    """The config files, including one given as `--config FILE`, split once from the positional overrides; the
    engine and the loader take the split as it is."""
    from lighter.config.loader import split_config_args  # lazy: yaml, not needed by --help

    named = overrides.pop(CONFIG_KEYWORD, None)
    return split_config_args([*([named] if named is not None else []), *configs])


def stage_command(stage: Stage, doc: str) -> Callable[..., None]:
    """`lighter fit|validate|test|predict`."""

    def command(*configs: str, run_dir: str | None = None, profile: str | None = None, **overrides: str) -> None:
        from lighter.engine import call_stage  # lazy: the engine and yaml, not for --help

        call_stage(stage, _configs(configs, overrides), overrides, run_dir=run_dir, profile=profile)

    command.__name__ = command.__qualname__ = stage.value
    command.__doc__ = doc
    return command


def resume(run_dir: str, *positional: str, profile: str | None = None, **overrides: str) -> None:
    """Continue a recorded fit from its newest checkpoint, in its own directory."""
    from lighter.engine.resume import resume as resume_run  # lazy: the engine and yaml, not for --help

    resume_run(run_dir, [*positional, *(f"{key}={value}" for key, value in overrides.items())], profile=profile)


def show(*configs: str, trust: bool = False, profile: str | None = None, **overrides: str) -> None:
    """Print the merged config after overrides, as YAML: exactly what would run, secrets masked. Imports nothing."""
    from lighter.config.trust import trust_summary  # lazy: the config modules and yaml, not needed by --help
    from lighter.engine.stage import prepare  # lazy: as above
    from lighter.run.files import dump  # lazy: as above

    experiment = prepare(Stage.FIT, _configs(configs, overrides), overrides, imports=False, profile=profile)
    if trust:
        print(experiment.secrets.scrub(trust_summary(experiment.config, experiment.loaded)))
    print(dump(experiment.secrets.mask(experiment.config)), end="")


def check(*configs: str, stage: str = "fit", profile: str | None = None, **overrides: str) -> None:
    """Build everything a stage builds and run one batch per loop through it, without training or writing."""
    from lighter.engine.stage import check as run_check  # lazy: the engine and yaml, not for --help

    experiment = run_check(stage, _configs(configs, overrides), overrides, profile=profile)
    if experiment.config.get("project"):
        print(f"lighter check: imported `project` from {experiment.config['project']}")
    print(f"lighter check: OK: `lighter {experiment.stage.value}` builds and runs one batch.")


def lr_find(*configs: str, run_dir: str | None = None, profile: str | None = None, **overrides: str) -> None:
    """Lightning's learning-rate range test on a fit config."""
    from lighter.engine.tuner import lr_find as find  # lazy: the engine and yaml, not for --help

    find(_configs(configs, overrides), overrides, run_dir=run_dir, profile=profile)


def scale_batch_size(*configs: str, run_dir: str | None = None, profile: str | None = None, **overrides: str) -> None:
    """Lightning's batch-size finder on a fit config."""
    from lighter.engine.tuner import scale_batch_size as scale  # lazy: the engine and yaml, not for --help

    scale(_configs(configs, overrides), overrides, run_dir=run_dir, profile=profile)


def dashboard(*folders: str, port: str = "8050", host: str = "127.0.0.1", allow_host: str = "", **unknown: str) -> None:
    """Serve interactive plots of every run under OUT until Ctrl+C."""
    if unknown:
        fail(
            f"unknown option --{next(iter(unknown))} for `lighter dashboard`. "
            "Its options: --port PORT, --host HOST, --allow-host NAME,..."
        )
    if len(folders) != 1:
        got = "none" if not folders else ", ".join(folders)
        fail(f"lighter dashboard takes one folder, the one holding your runs (got {got}): lighter dashboard runs/")
    from lighter.dashboard.serve import ServeError, serve  # lazy: the web stack

    try:
        number = int(port)
    except ValueError:
        fail(f"--port {port}: expected a whole number, e.g. --port 8050")
    try:
        serve(folders[0], port=number, host=str(host), allow_hosts=tuple(str(allow_host).split(",")))
    except ServeError as err:
        fail(str(err))


def profile_list() -> None:
    """List the profiles in the profile folder."""
    from lighter.tracking.commands import list_text  # lazy: yaml and the config modules

    print(list_text())


def profile_show(name: str) -> None:
    """Print a profile as YAML, secret values masked, under the path of its file."""
    from lighter.tracking.commands import show_text  # lazy: yaml and the config modules

    print(show_text(name), end="")
