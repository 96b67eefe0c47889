"""`lighter ARGV`: find the command in the table, read its options, let fire call its function, map errors to exits.

Options the table lists are read here: `--out FILE`, `--out=FILE` and `-o FILE` all reach the function as
`out="FILE"`, and a flag (`--trust`) takes no value, so `lighter show c.yaml --trust key=value` keeps `key=value`
as an override. Fire then calls the function with every argument as the exact string typed (each function is
given `str` as fire's parse function): fire would read `a#b=[1]` as Python and drop everything after `#`, so
positionals arrive in `*configs` and `--key::path=value` in `**overrides`, and the config loader parses them as
YAML. The help text is ours (`help.py`); fire's is never shown. `lighter --help` and `lighter --version` import
neither fire nor torch.
"""

from __future__ import annotations

import os
import sys

from lighter.cli.actions import fail
from lighter.cli.commands import (
    COMMAND_LIST,
    COMMANDS,
    CONFIG_OPTION,
    DEBUG_ENV,
    DEBUG_FLAG,
    HELP_FLAGS,
    VERBOSE_FLAG,
    VERSION_FLAGS,
    Command,
)
from lighter.cli.help import render_help, versions_text
from lighter.errors import did_you_mean
from lighter.quiet import VERBOSE_ENV, hide_noise
from lighter.utils.numeric import is_number

FLAG_VALUE = "True"  # what a flag becomes on fire's command line; `_flag` turns it back into a bool


def _find_command(argv: list[str]) -> tuple[str | None, list[str]]:
    """The longest command name at the front of argv (`sweep run` before `sweep`), and the arguments after it."""
    for n in range(min(len(argv), 3), 0, -1):
        name = " ".join(argv[:n])
        if name in COMMANDS:
            return name, argv[n:]
    return None, argv


def _is_group(word: str) -> bool:
    return any(name.startswith(f"{word} ") for name in COMMANDS)


def fire_args(command: Command, args: list[str]) -> list[str]:
    """The arguments as fire must see them: the table's options as `--keyword=value`, the rest as typed."""
    options = {**{o.name: o for o in command.options}, **{o.short: o for o in command.options if o.short}}
    if command.takes_config:
        options.setdefault(CONFIG_OPTION.name, CONFIG_OPTION)
    out = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        name, has_value, value = arg.partition("=")
        option = options.get(name) if arg.startswith("-") else None
        if option is not None and option.metavar is None:
            if has_value:
                fail(f"{option.name} is a flag and takes no value; write `{option.name}` alone.")
            out.append(f"--{option.keyword}={FLAG_VALUE}")
        elif option is not None:
            if not has_value:
                if i >= len(args):
                    fail(f"{option.name} needs a value: {option.name} {option.metavar}.")
                value, i = args[i], i + 1
            out.append(f"--{option.keyword}={value}")
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 1:
            if not os.path.exists(arg) and not is_number(arg):
                known = ", ".join(o.usage() for o in command.options) or "none besides --help, --debug, --verbose"
                fail(f"unknown option '{arg}' for `lighter {command.name}`. Its options: {known}.")
            out.append(arg)
        else:
            out.append(arg)  # a positional, or `--key::path=value` / `--key::path VALUE` for **overrides
    return out


def _flag(value: str) -> bool:
    return value == FLAG_VALUE


def _fire_tree() -> dict:
    """Commands as fire wants them: nested dicts for sub-commands, each function taking its arguments as typed."""
    import fire  # lazy: not needed by --help

    tree: dict = {}
    for command in COMMAND_LIST:
        flags = [o.keyword for o in command.options if o.metavar is None]
        fire.decorators.SetParseFn(str)(command.run)
        if flags:
            fire.decorators.SetParseFn(_flag, *flags)(command.run)
        *groups, leaf = command.name.split(" ")
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = command.run
    return tree


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lighter` console script and `python -m lighter`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if VERBOSE_FLAG in argv:
        os.environ[VERBOSE_ENV] = "1"  # processes Lightning starts for more devices inherit it
    argv = [a for a in argv if a not in (DEBUG_FLAG, VERBOSE_FLAG)]

    if not argv:
        print(render_help(), end="")
        raise SystemExit(2)  # a bare `lighter` ran nothing: a script that calls it by mistake must notice
    if argv[0] in HELP_FLAGS:
        print(render_help(), end="")
        return
    if argv[0] in VERSION_FLAGS:
        print(versions_text(), end="")
        return
    name, args = _find_command(argv)
    if name is None:
        if _is_group(argv[0]):
            print(render_help(argv[0]), end="")
            raise SystemExit(0 if any(a in HELP_FLAGS for a in argv[1:]) else 2)
        words = sorted({n.split(" ")[0] for n in COMMANDS})
        hint = did_you_mean(argv[0], words, fallback="Commands: " + ", ".join(words) + ".")
        fail(f"unknown command '{argv[0]}'. {hint} `lighter --help` lists them.")
    if any(a in HELP_FLAGS for a in args):
        print(render_help(name), end="")
        return
    _call(name, fire_args(COMMANDS[name], args), debug)


def _call(name: str, args: list[str], debug: bool) -> None:
    """Run command `name` through fire; errors end it as `lighter.engine.exits` says (a config mistake is one
    message and exit 2; other errors keep their traceback)."""
    hide_noise()
    import fire  # lazy: fire, torch and what the command needs load only once a command runs

    from lighter.engine.attribution import peer_failed  # lazy: imports the config modules
    from lighter.engine.exits import USER_ERRORS, component_line, user_message  # lazy: as above
    from lighter.run.files import process_rank  # lazy: imports yaml

    try:
        fire.Fire(_fire_tree(), command=[*name.split(" "), *args], name="lighter")
    except USER_ERRORS as err:
        if debug:
            raise
        # Every process meets the same config mistake: one message is enough.
        fail(user_message(err), quiet=process_rank() != 0)
    except BrokenPipeError:
        sys.stderr.close()  # `lighter show ... | head`: the reader left, nothing to report
    except Exception as err:
        if debug or not peer_failed(err):
            line = component_line(err)
            if line is not None:
                print(line, file=sys.stderr)
            raise
        fail(f"process {process_rank()} stopped because another process of this run failed; its error is above.", 1)
