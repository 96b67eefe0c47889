"""The package's layout as data: the command table against the functions it names and against Lightning."""

from __future__ import annotations

import inspect
import re

import pytest
import pytorch_lightning as pl

from lighter.cli import COMMANDS
from lighter.cli.commands import CONFIG_OPTION
from lighter.names import Stage


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.value)
def test_every_stage_is_a_trainer_method(stage):
    method = getattr(pl.Trainer, stage.value, None)
    assert callable(method), f"Stage.{stage.name} names no pytorch_lightning.Trainer method"
    assert "model" in inspect.signature(method).parameters


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_the_table_reaches_its_function(name):
    """An option the table lists is a parameter of the command's function (or lands in its **overrides)."""
    command = COMMANDS[name]
    parameters = inspect.signature(command.run).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    options = [*command.options, *([CONFIG_OPTION] if command.takes_config else [])]
    missing = [o.name for o in options if o.keyword not in parameters and not (takes_any and o is CONFIG_OPTION)]
    assert not missing, f"`lighter {name}` lists {missing}, which {command.run.__name__}() does not take"
    named = {
        p.name
        for p in parameters.values()
        if p.kind is not inspect.Parameter.VAR_POSITIONAL
        and p.kind is not inspect.Parameter.VAR_KEYWORD
        and p.default is not inspect.Parameter.empty
    }
    # Positionals are named in the usage: `[OUT]` is status(out=None), `OUT/<leaf>` is best(leaf=None).
    positional = {
        w.lower() for word in command.usage.split() if not word.startswith("-") for w in re.findall(r"\w+", word)
    }
    unlisted = named - {o.keyword for o in options} - positional
    assert not unlisted, f"{command.run.__name__}() takes {unlisted}, which `lighter {name} --help` does not list"
