"""The file itself: every malformed or hostile YAML file ends in a ConfigError naming the file, the line and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from lighter.config import reader
from lighter.config.loader import load_config
from lighter.config.reader import MAX_DEPTH, MAX_ENTRIES
from lighter.engine import prepare
from lighter.errors import ConfigError


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The classic: each level's anchor is a list of `width` aliases of the level below (width**levels strings)."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def nested(depth: int) -> str:
    return "vars: " + "{x: " * depth + "1" + "}" * depth + "\n"


# (file bytes, the line the error points at, fragments the message must hold)
FILE_CASES = [
    pytest.param(
        "seed: 0\nvars: {name: caf\xe9}\n".encode("latin-1"),
        2,
        ["not UTF-8 text: byte 0xe9 at byte position 24", "Save the file as UTF-8"],
        id="latin-1",
    ),
    pytest.param(
        "seed: 0\n".encode("utf-16"),
        1,
        ["the file is UTF-16 text", "lighter reads UTF-8", "iconv"],
        id="utf-16-with-bom",
    ),
    pytest.param(
        b"seed: 0\nvars: {a: b\x00c}\n",
        2,
        ["control character #x0000 at byte position 19", "UTF-16 or binary"],
        id="nul-byte",
    ),
    pytest.param(b"vars:\n  a: b\x1bc\n", 2, ["control character #x001b", "escape inside double quotes"], id="escape"),
    pytest.param(b"vars:\n  a: !!int abc\n", 2, ["cannot read the value !!int 'abc'", "invalid literal"], id="int-tag"),
    pytest.param(b"vars:\n  a: !!float xyz\n", 2, ["!!float 'xyz'", "could not convert"], id="float-tag"),
    pytest.param(
        b"seed: " + b"7" * 5000 + b"\n", 1, ["an integer of 5000 digits is longer than Python reads"], id="huge-int"
    ),
    pytest.param(
        b"vars:\n  run: !!python/object/apply:os.system [echo hi]\n",
        2,
        ["the tag !!python/object/apply:os.system asks YAML to create Python objects", "_target_: module.Name"],
        id="python-tag",
    ),
    pytest.param(b"vars:\n  a: !include other.yaml\n", 2, ["unknown YAML tag '!include'"], id="unknown-tag"),
    pytest.param(b"vars: &a {x: *a}\n", 1, ["contains an alias of itself", "@reference"], id="recursive-dict-anchor"),
    pytest.param(b"vars: &a [*a]\n", 1, ["contains an alias of itself"], id="recursive-list-anchor"),
    pytest.param(
        b"seed: 0\ntrainer: &trainer\n  max_epochs: 1\n  callbacks:\n    - *trainer\n",
        2,
        ["contains an alias of itself"],
        id="trainer-in-its-own-callbacks",
    ),
    pytest.param(nested(990).encode(), 1, [f"nests more than {MAX_DEPTH} levels deep", "@vars::name"], id="deep"),
    pytest.param(
        billion_laughs().encode(),
        6,
        [f"expand to more than {MAX_ENTRIES:,} entries", "the config was not expanded"],
        id="billion-laughs",
    ),
    pytest.param(
        b"system: {}\ntrainer: {}\nsystem:\n  model: 1\n",
        3,
        ["the key 'system' is written twice in the same mapping, at lines 1 and 3", "Merge the two"],
        id="duplicate-top-level-key",
    ),
    pytest.param(
        b"trainer:\n  max_epochs: 1\n  devices: 1\n  max_epochs: 2\n",
        4,
        ["the key 'max_epochs' is written twice", "lines 2 and 4"],
        id="duplicate-nested-key",
    ),
    pytest.param(b"- 1\n- 2\n", 1, ["the file holds a list, not a mapping"], id="top-level-list"),
]


@pytest.mark.parametrize(("raw", "line", "fragments"), FILE_CASES)
def test_bad_file_is_a_config_error(tmp_path, raw, line, fragments):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as info:
        load_config([str(path)])
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert f"cfg.yaml:{line}" in message
    assert len(message.splitlines()) <= 3


def test_macro_to_a_utf16_file_names_that_file(tmp_path):
    (tmp_path / "part.yaml").write_bytes("model: 1\n".encode("utf-16"))
    path = tmp_path / "cfg.yaml"
    path.write_text("vars:\n  m: '%part.yaml::model'\n")
    with pytest.raises(ConfigError, match="the file is UTF-16 text") as info:
        load_config([str(path)])
    assert "part.yaml:1" in str(info.value)
    assert isinstance(info.value.__cause__, UnicodeError) or info.value.__cause__ is None


def test_python_tag_in_an_override_is_refused(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("vars: {}\n")
    with pytest.raises(ConfigError, match=r"vars::x: the override value .* does not parse as YAML \(the tag !!python"):
        load_config([str(path)], ["vars::x=!!python/object/apply:os.system [ls]"])


def test_shared_anchor_without_recursion_still_reads(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("vars:\n  base: &base {lr: 0.1, momentum: 0.9}\n  a: *base\n  b: {<<: *base, lr: 0.2}\n")
    loaded = load_config([str(path)])
    assert loaded.data["vars"]["a"] == {"lr": 0.1, "momentum": 0.9}
    assert loaded.data["vars"]["b"] == {"lr": 0.2, "momentum": 0.9}
    assert str(loaded.where("vars::b::lr")).endswith("cfg.yaml:4")


@pytest.mark.parametrize("command", ["show", "check", "fit"])
def test_billion_laughs_is_refused_by_every_command(tmp_path, command, cli):
    (tmp_path / "laughs.yaml").write_text(billion_laughs())
    result = cli([command, "laughs.yaml"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"expand to more than {MAX_ENTRIES:,} entries" in result.stderr
    assert "Traceback" not in result.stderr


def macro_laughs(tmp_path: Path) -> Path:
    """Same-file macros of macros: each level copies the one below nine times."""
    lines = ["vars:", "  l0: [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  l{i}: [" + ", ".join([f"'%vars::l{i - 1}'"] * 9) + "]" for i in range(1, 9)]
    return write_text(tmp_path / "cfg.yaml", "\n".join(lines) + "\n")


def file_macro_laughs(tmp_path: Path) -> Path:
    """File macros of file macros: f0.yaml copies f1.yaml's part nine times, and so on."""
    for i in range(9):
        inner = f"'%f{i + 1}.yaml::v'" if i < 8 else "lol"
        write_text(tmp_path / f"f{i}.yaml", "v: [" + ", ".join([inner] * 9) + "]\n")
    return write_text(tmp_path / "cfg.yaml", "vars: {all: '%f0.yaml::v'}\n")


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        pytest.param(macro_laughs, ["vars::l6::0: the macro '%vars::l5' expands to more than 250,000"], id="macros"),
        pytest.param(file_macro_laughs, ["file macros expand the config to more than 250,000"], id="file-macros"),
        pytest.param(
            lambda p: write_text(p / "cfg.yaml", "vars:\n  a: '%::b'\n  b: '%::a'\n"),
            ["vars::b: macros copy each other in a loop: vars::a -> vars::b -> vars::a", "cfg.yaml:3"],
            id="macro-loop",
        ),
        pytest.param(
            lambda p: write_text(p / "cfg.yaml", "vars:\n  a: {x: '%vars::a'}\n"),
            ["macros copy each other in a loop", "cfg.yaml:2"],
            id="macro-inside-its-target",
        ),
    ],
)
def test_macros_that_multiply_or_loop_are_refused_before_copying(tmp_path, make, fragments):
    path = make(tmp_path)
    with pytest.raises(ConfigError) as info:
        prepare("fit", [str(path)], imports=False)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_the_alias_limit_counts_what_aliases_add_not_a_long_plain_list(monkeypatch):
    # The limit scaled down 250x (a 300,000-item list takes 25 s to parse here): a list 3x the limit, written out
    # with no anchor, is read; aliases that add more than the limit are refused.
    monkeypatch.setattr(reader, "MAX_ENTRIES", 1_000)
    data, _ = reader.parse("vars:\n  xs: [" + "1, " * 2_999 + "1]\n", "long.yaml")
    assert len(data["vars"]["xs"]) == 3_000
    with pytest.raises(ConfigError, match="expand to more than 1,000 entries beyond those written"):
        reader.parse(billion_laughs(levels=4, width=9), "laughs.yaml")


@pytest.mark.parametrize(
    "env, message",
    [
        pytest.param("64", ["the file is 72 bytes, more than the 64 a config may have; it was not read",
                            "set LIGHTER_MAX_CONFIG_BYTES=72 (or more)"], id="over-the-limit"),
        pytest.param("lots", ["LIGHTER_MAX_CONFIG_BYTES='lots' is not a number of bytes"], id="bad-override"),
    ],
)  # fmt: skip
def test_a_file_over_the_size_limit_is_refused_unread_naming_the_override(tmp_path, monkeypatch, env, message):
    path = tmp_path / "cfg.yaml"
    path.write_text("trainer: {max_epochs: 1}\nsystem:\n  model: {_target_: torch.nn.Identity}\n")
    monkeypatch.setenv("LIGHTER_MAX_CONFIG_BYTES", env)
    with pytest.raises(ConfigError) as err:
        load_config([str(path)])
    for part in message:
        assert part in str(err.value)
    monkeypatch.setenv("LIGHTER_MAX_CONFIG_BYTES", "72")  # the override named in the message reads it
    assert load_config([str(path)]).data["trainer"]["max_epochs"] == 1
