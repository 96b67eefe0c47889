"""Read one YAML document as plain data, safely: UTF-8 only, no Python tags, bounded size, every key's line kept.

A shared config is untrusted input. Before anything is built from the parsed node graph, one pass over it
(`_inspect`) refuses what would hang or crash later: recursive anchors, aliases that expand past
`MAX_ENTRIES` entries beyond those written (a "billion laughs" file is refused from its node counts, without
expanding it; a long plain list is not),
nesting deeper than `MAX_DEPTH`, duplicate keys and Python tags.
"""

from __future__ import annotations

import codecs
import gc
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from lighter.config.merge import plain_path
from lighter.errors import ConfigError, Location
from lighter.names import SEP

MAX_DEPTH = 100  # real configs nest about 10 deep; the loader's recursive passes need headroom under Python's 1000
MAX_ENTRIES = 250_000  # entries aliases add when expanded; 25x the largest config in benchmarks/config_scale.py
MAX_BYTES = 16 * 2**20  # a file larger than this is refused unread: parsing 50 MB took 25 s and 3 GB
MAX_BYTES_ENV = "LIGHTER_MAX_CONFIG_BYTES"  # raises (or lowers) MAX_BYTES
_PYTHON_TAG = "tag:yaml.org,2002:python/"
_YAML_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"
_BOMS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32", codecs.BOM_UTF16_LE: "UTF-16",
         codecs.BOM_UTF16_BE: "UTF-16"}  # fmt: skip
_SAVE_AS_UTF8 = "Save the file as UTF-8 (most editors: File > Save with Encoding), or convert it: iconv -t UTF-8."


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML where `1e-3` is a float, as in YAML 1.2; PyYAML's 1.1 rules need `1.0e-3` and read `1e-3` as a str."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def decode(raw: bytes, origin: str) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is dropped); anything else names the file and the byte position."""
    for bom, name in _BOMS.items():
        if raw.startswith(bom):
            raise ConfigError(
                f"the file is {name} text (it starts with a {name} byte-order mark); lighter reads UTF-8",
                location=Location(origin, 1),
                suggestion=_SAVE_AS_UTF8,
            )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ConfigError(
            f"the file is not UTF-8 text: byte 0x{raw[err.start]:02x} at byte position {err.start} cannot be decoded",
            location=Location(origin, line),
            suggestion=_SAVE_AS_UTF8,
        ) from err


def max_bytes() -> int:
    value = os.environ.get(MAX_BYTES_ENV, "")
    try:
        return int(value) if value else MAX_BYTES
    except ValueError:
        raise ConfigError(
            f"{MAX_BYTES_ENV}={value!r} is not a number of bytes", suggestion=f"Write e.g. {MAX_BYTES_ENV}=67108864."
        ) from None


def read_file(path: Path) -> tuple[Any, dict[str, Location]]:
    """Parse one YAML file into data (None when empty) and a key -> location map."""
    try:
        size, limit = path.stat().st_size, max_bytes()
        if size > limit:
            raise ConfigError(
                f"the file is {size:,} bytes, more than the {limit:,} a config may have; it was not read",
                location=Location(str(path)),
                suggestion=f"Is it a config? Data belongs in files a dataset reads. To read it anyway, set "
                f"{MAX_BYTES_ENV}={size} (or more).",
            )
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"cannot read '{path}': {err.strerror or err}",
            location=Location(str(path)),
            suggestion="Check that it is a readable file.",
        ) from err
    return parse(decode(raw, str(path)), str(path))


def parse(text: str, origin: str | None) -> tuple[Any, dict[str, Location]]:
    """Parse YAML text; `origin` is the file name for locations (None: the command line)."""
    collecting = gc.isenabled()
    gc.disable()  # each full collection walks the whole node graph: reading 10,000 entries grew quadratically
    try:
        return _parse(text, origin)
    finally:
        if collecting:
            gc.enable()


def _where(origin: str | None, line: int | None) -> Location:
    return Location(origin, line) if origin is not None else Location()


def _parse(text: str, origin: str | None) -> tuple[Any, dict[str, Location]]:
    loader = _Loader(text)
    try:
        node = _compose(loader, text, origin)
        if node is None:
            return None, {}
        _inspect(node, origin)
        data = _construct(loader, node, origin)
    finally:
        loader.dispose()
    sources: dict[str, Location] = {}
    _record_locations(node, "", origin, sources)
    return data, sources


def _compose(loader: Any, text: str, origin: str | None) -> yaml.Node | None:
    try:
        return loader.get_single_node()
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        byte = len(text[: err.position].encode("utf-8", "surrogatepass"))
        char = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "\0")
        hint = " A NUL byte usually means the file is UTF-16 or binary." if char == 0 else ""
        raise ConfigError(
            f"the file holds the control character #x{char:04x} at byte position {byte}, which YAML does not allow",
            location=_where(origin, line),
            suggestion=f'Delete it, or write it as an escape inside double quotes ("\\x{char:02x}").{hint}',
        ) from err
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        column = f", column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "invalid YAML"
        raise ConfigError(
            f"YAML syntax error{column}: {problem}",
            location=_where(origin, mark.line + 1 if mark else None),
            suggestion="Check the indentation and quoting on that line and the one above it.",
        ) from err
    except yaml.YAMLError as err:
        raise ConfigError(f"YAML error: {err}", location=_where(origin, None)) from err
    except RecursionError as err:
        raise _too_deep(origin, None) from err


def _too_deep(origin: str | None, line: int | None) -> ConfigError:
    return ConfigError(
        f"the config nests more than {MAX_DEPTH} levels deep",
        location=_where(origin, line),
        suggestion="Flatten it: move deep parts under `vars` and refer to them with @vars::name.",
    )


def _inspect(root: yaml.Node, origin: str | None) -> None:
    """One pass over the node graph, each node once however many aliases share it; see the module docstring."""
    size: dict[int, int] = {}  # node id -> entries it expands to, itself included
    depth: dict[int, int] = {}  # node id -> levels below it
    open_nodes: set[int] = set()  # on the current path: meeting one again means an anchor holds its own alias
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        children = _children(node)
        if done:
            open_nodes.discard(nid)
            size[nid] = 1 + sum(size[id(c)] for c in children)
            depth[nid] = 1 + max((depth[id(c)] for c in children), default=0)
            # Entries beyond the distinct nodes seen so far came from aliases: a long plain list adds none.
            if size[nid] - len(size) > MAX_ENTRIES:
                raise _too_big(node, size[nid], origin)
            if depth[nid] > MAX_DEPTH:
                raise _too_deep(origin, node.start_mark.line + 1)
            continue
        if nid in size:
            continue
        _check_node(node, origin)
        open_nodes.add(nid)
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise ConfigError(
                    "the anchor written here contains an alias of itself, so its value would be infinitely deep",
                    location=_where(origin, child.start_mark.line + 1),
                    suggestion="Alias a part of it instead, or use an @reference such as '@trainer::max_epochs'.",
                )
            if id(child) not in size:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _too_big(node: yaml.Node, entries: int, origin: str | None) -> ConfigError:
    return ConfigError(
        f"anchors and aliases here expand to more than {MAX_ENTRIES:,} entries beyond those written "
        f"({entries:,} so far); the config was not expanded",
        location=_where(origin, node.start_mark.line + 1),
        suggestion="Use fewer nested aliases; an alias copies its anchor's whole value each time it is used.",
    )


def _check_node(node: yaml.Node, origin: str | None) -> None:
    line = node.start_mark.line + 1
    if node.tag.startswith(_PYTHON_TAG):
        raise ConfigError(
            f"the tag !!{node.tag[len(_YAML_TAG) :]} asks YAML to create Python objects, "
            "which lighter never does when reading a config",
            location=_where(origin, line),
            suggestion="Write the object as a component instead: `_target_: module.Name` with its arguments as keys.",
        )
    if isinstance(node, yaml.ScalarNode) and node.tag == _INT_TAG:
        digits = sum(c.isdigit() for c in node.value)
        limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
        if limit and digits > limit:
            raise ConfigError(
                f"an integer of {digits} digits is longer than Python reads ({limit} digits)",
                location=_where(origin, line),
                suggestion="Quote it to keep it as text, or give a shorter number.",
            )
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = (key_node.tag, key_node.value)
            here = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"the key '{key_node.value}' is written twice in the same mapping, at lines {seen[key]} and "
                    f"{here}; YAML would silently keep only the second",
                    location=_where(origin, here),
                    suggestion="Merge the two into one, or delete the one you do not mean.",
                )
            seen[key] = here


def _construct(loader: Any, node: yaml.Node, origin: str | None) -> Any:
    try:
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = str(err.problem or err.context or "invalid value")
        unknown = re.search(r"could not determine a constructor for the tag '([^']*)'", problem)
        if unknown:
            problem = f"unknown YAML tag '{unknown[1]}'"
        raise ConfigError(
            f"cannot read the value: {problem}",
            location=_where(origin, mark.line + 1 if mark else None),
            suggestion="Remove the tag or fix the value; lighter reads plain YAML: mappings, lists, strings, "
            "numbers, booleans and null.",
        ) from err
    except (ValueError, TypeError, OverflowError) as err:
        bad = _failing_scalar(node)
        line = bad.start_mark.line + 1 if bad is not None else None
        tag = f"!!{bad.tag[len(_YAML_TAG) :]} " if bad is not None and bad.tag.startswith(_YAML_TAG) else ""
        value = f" {tag}{bad.value!r}" if bad is not None else ""
        raise ConfigError(
            f"cannot read the value{value}: {err}",
            location=_where(origin, line),
            suggestion="Fix the value, or drop the tag and quote it to keep it as text.",
        ) from err


def _failing_scalar(root: yaml.Node) -> yaml.ScalarNode | None:
    """The first scalar that cannot be constructed on its own: where a ValueError without a line came from."""
    constructor = yaml.SafeLoader("")
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                constructor.construct_object(node)
            except Exception:  # noqa: BLE001 - any failure marks the culprit; the caller re-raises the original
                return node
        stack.extend(reversed(_children(node)))
    return None


def _record_locations(node: yaml.Node, prefix: str, origin: str | None, out: dict[str, Location]) -> None:
    """Every expanded key path -> its line. `_inspect` bounded the depth and the expanded size beforehand."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{SEP}{plain_path(key_node.value, prefix)}" if prefix else plain_path(key_node.value)
            out[key] = _where(origin, key_node.start_mark.line + 1)
            _record_locations(value_node, key, origin, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = f"{prefix}{SEP}{i}" if prefix else str(i)
            out[key] = _where(origin, item.start_mark.line + 1)
            _record_locations(item, key, origin, out)
