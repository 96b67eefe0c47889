"""Merge operators in a later file and on the command line: paths, `~` items, `+` appends, `=` replaces."""

from __future__ import annotations

import pytest
from conftest import write_yaml

from lighter.config.loader import load_config
from lighter.errors import ConfigError

FIRST = """
trainer:
  max_epochs: 3
  callbacks: [a, b, c]
system:
  optimizer: {lr: 0.1, momentum: 0.9}
"""


def _load(tmp_path, later: str | None = None, overrides: list[str] | None = None):
    files = [str(write_yaml(tmp_path / "a.yaml", FIRST))]
    if later is not None:
        files.append(str(write_yaml(tmp_path / "b.yaml", later)))
    return load_config(files, overrides)


@pytest.mark.parametrize(
    ("later", "overrides", "path", "expected"),
    [
        # Upstream 0.0.4's override files: flat `#` keys, applied after the main config.
        pytest.param("trainer#max_epochs: 1\ntrainer#fast_dev_run: true\n", None, "trainer",
                     {"max_epochs": 1, "callbacks": ["a", "b", "c"], "fast_dev_run": True}, id="flat-hash-keys"),
        pytest.param("system::optimizer::lr: 0.5\n", None, "system", {"optimizer": {"lr": 0.5, "momentum": 0.9}},
                     id="flat-colon-keys"),
        pytest.param("sweep: {system::optimizer::lr: [1, 2]}\n", None, "sweep", {"system::optimizer::lr": [1, 2]},
                     id="plain-key-below-the-top-stays-a-key"),
        pytest.param("system: {~optimizer::momentum: null}\n", None, "system", {"optimizer": {"lr": 0.1}},
                     id="operator-path-below-a-key"),
        pytest.param("~trainer::callbacks: [0, 2]\n", None, "trainer::callbacks", ["b"], id="delete-list-items"),
        pytest.param("~trainer::callbacks: [-1]\n", None, "trainer::callbacks", ["a", "b"], id="delete-last-item"),
        pytest.param("system: {~optimizer: [momentum]}\n", None, "system", {"optimizer": {"lr": 0.1}},
                     id="delete-dict-keys"),
        pytest.param("~system::optimizer::momentum:\n", None, "system", {"optimizer": {"lr": 0.1}},
                     id="delete-nested-path"),
        pytest.param("trainer: {~callbacks: null}\n", None, "trainer", {"max_epochs": 3}, id="delete-whole-key"),
        pytest.param("+trainer::callbacks: [d, e]\n", None, "trainer::callbacks", ["a", "b", "c", "d", "e"],
                     id="append-list-in-file"),
        pytest.param("trainer: {+callbacks: d}\n", None, "trainer::callbacks", ["a", "b", "c", "d"],
                     id="append-one-item-in-file"),
        pytest.param("+trainer::plugins: [p]\n", None, "trainer::plugins", ["p"], id="append-to-nothing-sets"),
        pytest.param("+system::optimizer: {lr: 1}\n", None, "system::optimizer", {"lr": 1, "momentum": 0.9},
                     id="append-dict-merges"),
        pytest.param("=trainer::callbacks: [z]\n", None, "trainer::callbacks", ["z"], id="replace-at-path"),
        pytest.param(None, ["+trainer::callbacks=[d]"], "trainer::callbacks", ["a", "b", "c", "d"],
                     id="cli-plus-prefix"),
        pytest.param(None, ["trainer::callbacks+={_target_: x.Y}"], "trainer::callbacks",
                     ["a", "b", "c", {"_target_": "x.Y"}], id="cli-plus-equals"),
        pytest.param(None, ["trainer::callbacks::3=d"], "trainer::callbacks", ["a", "b", "c", "d"],
                     id="cli-index-one-past-the-end-appends"),
        pytest.param(None, ["~trainer::callbacks=[1]"], "trainer::callbacks", ["a", "c"], id="cli-delete-items"),
        pytest.param(None, ["~trainer#callbacks#0"], "trainer::callbacks", ["b", "c"], id="cli-delete-index"),
        pytest.param("+trainer::callbacks: [d]\n", ["+trainer::callbacks=[e]"], "trainer::callbacks",
                     ["a", "b", "c", "d", "e"], id="file-then-cli-append"),
    ],
)  # fmt: skip
def test_operators(tmp_path, later, overrides, path, expected):
    node = _load(tmp_path, later, overrides).data
    for part in path.split("::"):
        node = node[part]
    assert node == expected


def test_flat_keys_remember_their_lines(tmp_path):
    loaded = _load(tmp_path, "# CI\ntrainer#max_epochs: 1\n~trainer::callbacks: [0]\n")
    assert str(loaded.where("trainer::max_epochs")).endswith("b.yaml:2")
    assert str(loaded.where("trainer::callbacks")).endswith("b.yaml:3")


@pytest.mark.parametrize(
    ("later", "overrides", "message", "line"),
    [
        pytest.param("~trainer::logger:\n", None,
                     r"trainer::logger: `~trainer::logger` deletes nothing: there is no 'logger'", 1,
                     id="delete-missing-key"),
        pytest.param("system:\n  ~optimizer::nesterov:\n", None, r"`~system::optimizer::nesterov` deletes nothing",
                     2, id="delete-missing-nested"),
        pytest.param("~vars::x:\n", None, r"`~vars::x` deletes nothing: there is no 'vars'", 1,
                     id="delete-below-missing"),
        pytest.param("~trainer::callbacks: [5]\n", None,
                     r"`~trainer::callbacks` lists 5, which is not an index of its 3 item\(s\)", 1,
                     id="delete-missing-index"),
        pytest.param("~system::optimizer: [momentun]\n", None,
                     r"`~system::optimizer` lists 'momentun', which is not a key there(.|\n)*Did you mean 'momentum'",
                     1, id="delete-missing-dict-key"),
        pytest.param("~trainer::max_epochs: [0]\n", None,
                     r"lists items, but trainer::max_epochs holds an int, not a list or dict", 1,
                     id="delete-items-of-a-scalar"),
        pytest.param("~trainer::callbacks: 1\n", None, r"takes null \(delete the key\) or a list", 1,
                     id="delete-with-a-scalar"),
        pytest.param("+trainer::max_epochs: [1]\n", None,
                     r"`\+` appends to a list or merges into a dict, but trainer::max_epochs holds an int", 1,
                     id="append-to-a-scalar"),
        pytest.param("trainer::max_epochs::x: 1\n", None,
                     r"cannot reach 'x': trainer::max_epochs holds an int, not a dict or list", 1,
                     id="path-through-a-scalar"),
        pytest.param(None, ["trainer::callbacks::7=d"],
                     r"'7' is not an index of trainer::callbacks, a list of 3 item(.|\n)*\+trainer::callbacks=",
                     None, id="cli-index-past-the-end"),
        pytest.param(None, ["~trainer::logger"], r"`~trainer::logger` deletes nothing(.|\n)*from the command line",
                     None, id="cli-delete-missing"),
    ],
)  # fmt: skip
def test_operator_errors_say_where(tmp_path, later, overrides, message, line):
    with pytest.raises(ConfigError, match=message) as err:
        _load(tmp_path, later, overrides)
    if line is not None:
        assert err.value.location.file.endswith("b.yaml") and err.value.location.line == line
    else:
        assert err.value.location.file is None  # the command line
