"""The `lighter` command line: the command table (`commands.py`), what each command does (`actions.py`,
`sweep_actions.py`), its help (`help.py`) and the entry point that dispatches to them (`dispatch.py`).

Only this layer knows argv. It imports nothing heavy, so `lighter --help` stays instant.
"""

from lighter.cli.commands import COMMANDS
from lighter.cli.dispatch import main
from lighter.cli.help import render_help

__all__ = ["COMMANDS", "main", "render_help"]
