"""The `lighter` command: a subcommand per stage (built from the stage table) plus `show` and `check`.

Fire would read `a#b=[1]` as Python (and drop everything after `#`), so every argument is handed to
it as a quoted string and parsed as YAML by the config loader instead. Heavy modules load inside the
commands, so `lighter --help` stays instant.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

from lighter.keys import STAGE_HELP, Stage

USAGE_TAIL = """
CONFIGS are YAML files, merged in order (`a.yaml,b.yaml` or `a.yaml b.yaml`; `--config a.yaml` works too).
Overrides follow them as `key::path=value` or `--key::path=value`; values are YAML.
Add --debug (or LIGHTER_DEBUG=1) for the full traceback of an error."""

HELP_FLAGS = ("--help", "-h")
DEBUG_FLAG = "--debug"
CONFIG_FLAG = "config"


def _configs(configs: tuple[str, ...], overrides: dict[str, str]) -> list[str]:
    """The config files, including one given as `--config FILE` (Lighter's own CLI names the argument so)."""
    named = overrides.pop(CONFIG_FLAG, None)
    return [*([named] if named is not None else []), *configs]


def _stage_command(stage: Stage) -> Callable[..., None]:
    def command(*configs: str, **overrides: str) -> None:
        from lighter.runner import run

        run(stage, _configs(configs, overrides), overrides)

    command.__name__ = command.__qualname__ = stage.value
    command.__doc__ = STAGE_HELP[stage] + "\n" + USAGE_TAIL
    return command


def show(*configs: str, trust: bool = False, **overrides: str) -> None:
    """Print the merged config after overrides, as YAML: exactly what would run. Imports nothing.

    With --trust, first list every module a _target_ imports and every $ expression the config evaluates.
    """
    from lighter.config.loader import dump_yaml
    from lighter.config.trust import trust_summary
    from lighter.runner import prepare

    experiment = prepare(Stage.FIT, _configs(configs, overrides), overrides, imports=False)
    if trust:
        print(trust_summary(experiment.config, experiment.loaded))
    print(dump_yaml(experiment.config), end="")


def check(*configs: str, stage: str = "fit", **overrides: str) -> None:
    """Build everything a stage builds and run one batch per loop through it, without training or writing.

    --stage picks the stage to check: fit (default), validate, test or predict.
    """
    from lighter.runner import check as run_check

    experiment = run_check(stage, _configs(configs, overrides), overrides)
    print(f"lighter check: OK: `lighter {experiment.stage.value}` builds and runs one batch.")


COMMANDS: dict[str, Callable[..., None]] = {stage.value: _stage_command(stage) for stage in Stage}
COMMANDS.update(show=show, check=check)


def _fire_argv(argv: list[str]) -> list[str]:
    """Quote every argument for fire so it arrives as the exact string typed; move help behind `--`."""
    wants_help = any(a in HELP_FLAGS for a in argv)
    out = []
    for arg in argv[1:]:
        if arg in HELP_FLAGS:
            continue
        if arg.startswith("--") and "=" in arg:
            key, _, value = arg.partition("=")
            out.append(f"{key}={value!r}")
        elif arg.startswith("--"):
            out.append(arg)
        else:
            out.append(repr(arg))
    return [argv[0], *out, *(["--", "--help"] if wants_help else [])]


def _fail(message: str, code: int = 2, *, quiet: bool = False) -> None:
    if not quiet:
        print(f"lighter: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lighter` console script and `python -m lighter`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get("LIGHTER_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != DEBUG_FLAG]

    import fire

    if not argv or argv[0] in HELP_FLAGS:
        with contextlib.redirect_stderr(sys.stdout):  # fire writes help to stderr; `lighter --help | less` wants stdout
            fire.Fire(COMMANDS, command=["--", "--help"], name="lighter")
        return
    if argv[0] not in COMMANDS:
        from lighter.config.errors import did_you_mean

        hint = did_you_mean(argv[0], COMMANDS, fallback="Commands: " + ", ".join(COMMANDS) + ".")
        _fail(f"unknown command '{argv[0]}'. {hint}")

    from lighter.adapters import BatchAccessError
    from lighter.config.errors import ConfigError

    try:
        wants_help = any(a in HELP_FLAGS for a in argv)
        with contextlib.redirect_stderr(sys.stdout) if wants_help else contextlib.nullcontext():
            fire.Fire(COMMANDS, command=_fire_argv(argv), name="lighter")
    except (ConfigError, BatchAccessError) as err:
        if debug:
            raise
        # Every process meets the same config mistake: one message is enough.
        _fail(err.render() if isinstance(err, ConfigError) else str(err), quiet=_rank() != 0)
    except BrokenPipeError:
        sys.stderr.close()  # `lighter show ... | head`: the reader left, nothing to report
    except Exception as err:
        if debug or not _peer_failed(err):
            raise
        _fail(f"process {_rank()} stopped because another process of this run failed; its error is above.", 1)


def _rank() -> int:
    """This process's rank under torchrun, SLURM or Lightning's launcher; 0 outside them."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _peer_failed(err: BaseException) -> bool:
    """A collective broke because another rank died: that rank reports the cause."""
    text = str(err)
    return type(err).__name__ in ("DistBackendError", "DistNetworkError") or any(
        phrase in text for phrase in ("Connection closed by peer", "Connection reset by peer", "Broken pipe")
    )
