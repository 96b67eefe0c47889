"""How an error ends a command: what is printed and the exit code. One table for `lighter` and a sweep trial's
process, which runs the engine without the CLI and must end the same way.

| what stopped the command                                    | printed on stderr                          | exit |
|-------------------------------------------------------------|--------------------------------------------|------|
| a config mistake (`ConfigError`), or a batch accessor that  | `lighter: error: MESSAGE`, no traceback    | 2    |
| does not fit the data (`BatchAccessError`)                  |                                            |      |
| `SystemExit` (a signal's stop, after recording the run)     | nothing more                               | its  |
|                                                             |                                            | code |
| `KeyboardInterrupt`                                         | nothing more                               | 130  |
| any other error                                             | `lighter: error in KEY (TARGET) at         | 1    |
|                                                             | FILE:LINE; its traceback follows.` when it |      |
|                                                             | passed through a configured component      |      |
|                                                             | (`lighter.engine.attribution`), then the   |      |
|                                                             | traceback                                  |      |
"""

from __future__ import annotations

import sys
import traceback

from lighter.adapters import BatchAccessError
from lighter.errors import ConfigError, error_line
from lighter.run.lifecycle import EXIT_CODES

USER_ERRORS = (ConfigError, BatchAccessError)  # the user's to fix from one line: no traceback


def user_message(err: ConfigError | BatchAccessError) -> str:
    """The one line a `USER_ERRORS` error is told in: a ConfigError names its key, file, line and a fix."""
    return err.render() if isinstance(err, ConfigError) else str(err)


def component_line(err: BaseException) -> str | None:
    """The line printed before the traceback of an error the user's own component raised, if it did."""
    where = getattr(err, "lighter_component", None)  # set by lighter.engine.attribution
    return f"lighter: error in {where}; its traceback follows." if where else None


def exit_code(err: BaseException) -> int:
    if isinstance(err, SystemExit):
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    if isinstance(err, KeyboardInterrupt):
        return EXIT_CODES["SIGINT"]
    return EXIT_CODES["config_error"] if isinstance(err, USER_ERRORS) else EXIT_CODES["failed"]


def report(err: BaseException) -> int:
    """Print `err` as the table says, as `lighter` would have, and return its exit code (for a caller that runs the
    engine in place of the CLI and must not raise)."""
    if isinstance(err, USER_ERRORS):
        print(error_line(user_message(err)), file=sys.stderr)
    elif not isinstance(err, (SystemExit, KeyboardInterrupt)):
        line = component_line(err)
        if line is not None:
            print(line, file=sys.stderr)
        traceback.print_exception(err)
    return exit_code(err)
