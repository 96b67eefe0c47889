"""How an error ends a command (lighter/engine/exits.py): the one table the CLI and a sweep trial's process share."""

from __future__ import annotations

import pytest

from lighter.adapters import BatchAccessError
from lighter.engine.exits import component_line, exit_code, report
from lighter.errors import ConfigError, Location


def _from_component() -> RuntimeError:
    err = RuntimeError("shapes do not match")
    err.lighter_component = "system::model (project.Net) at cfg.yaml:4"  # as lighter.engine.attribution sets it
    return err


def _raised(err: BaseException) -> BaseException:
    try:
        raise err
    except BaseException as caught:  # the point: a raised error, with its traceback
        return caught


@pytest.mark.parametrize(
    ("err", "code", "first_line", "traceback"),
    [
        pytest.param(
            ConfigError("must be positive", key="system::optimizer::lr", location=Location("cfg.yaml", 7)),
            2,
            "lighter: error: system::optimizer::lr: must be positive",
            False,
            id="config-error",
        ),
        pytest.param(
            BatchAccessError("no key 'image' in the batch", "input", "Use one of: 'x', 'y'"),
            2,
            "lighter: error: no key 'image' in the batch. Use one of: 'x', 'y'",
            False,
            id="batch-access-error",
        ),
        pytest.param(SystemExit(143), 143, None, False, id="signal-stop"),
        pytest.param(SystemExit(None), 0, None, False, id="exit-none"),
        pytest.param(KeyboardInterrupt(), 130, None, False, id="ctrl-c"),
        pytest.param(
            _from_component(),
            1,
            "lighter: error in system::model (project.Net) at cfg.yaml:4; its traceback follows.",
            True,
            id="component-error",
        ),
        pytest.param(ValueError("boom"), 1, "Traceback (most recent call last):", True, id="other-error"),
    ],
)
def test_report_prints_what_lighter_prints_and_returns_the_exit_code(capsys, err, code, first_line, traceback):
    assert report(_raised(err)) == code == exit_code(err)
    err_text = capsys.readouterr().err
    lines = err_text.splitlines()
    if first_line is None:
        assert err_text == ""
    else:
        assert lines[0] == first_line
    assert ("Traceback (most recent call last):" in err_text) is traceback
    if traceback:
        assert lines[-1] == f"{type(err).__name__}: {err}"


def test_config_error_report_keeps_the_file_and_line(capsys):
    err = ConfigError("must be positive", key="system::optimizer::lr", location=Location("cfg.yaml", 7), suggestion="x")
    report(err)
    assert capsys.readouterr().err.splitlines()[1:] == ["  at cfg.yaml:7", "  x"]


def test_no_component_line_for_an_error_no_component_raised():
    assert component_line(ValueError("boom")) is None
