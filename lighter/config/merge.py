"""How a later config file or an override changes the config so far.

A key may start with an operator and may be a `::` (or `#`) path, in a file at any depth and on the command line:

    key:          a dict merges into the dict there, key by key; anything else replaces
    =key:         replaces the whole value, dict or not
    ~key:         (null) deletes the key; `~key: [items]` deletes only those list indices or dict keys
    +key:         appends: a list extends the list there, another value is added to it as one item;
                  a dict merges; with nothing there, the value is set
    a::b::c: 1    at the top level, sets that path: upstream Lighter 0.0.4's override files say `trainer#max_epochs: 1`;
                  with an operator (`~a::b:`, `+a::b:`, `=a::b:`) a path works at any depth

An index one past the end of a list (`trainer::callbacks::2` on two callbacks) appends. A `~` that matches nothing,
and a path through something that is not a dict or list, are errors that say where they were written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lighter.errors import ConfigError, Location, did_you_mean
from lighter.names import ALT_SEP, APPEND, DELETE, LITERAL_BLOCKS, REPLACE, SEP

Where = Callable[[str], Location | None]
OPERATORS = (DELETE, REPLACE, APPEND)
_MISSING = object()


def split_key(raw: Any) -> tuple[str, list[str]]:
    """`~a#b` -> ('~', ['a', 'b']); the operator is '' for a plain key."""
    key = str(raw)
    op = key[0] if key[:1] in OPERATORS and len(key) > 1 else ""
    return op, key[len(op) :].replace(ALT_SEP, SEP).split(SEP)


def entry(raw: Any, prefix: str = "") -> tuple[str, list[str]]:
    """The operator and path of the key `raw` written below `prefix`.

    A plain key is a path at the top level only: deeper, it is one key. In a literal block (`sweep:`, whose keys
    are key paths, `+` marking one to create) only `~` and `=` act, on one key.
    """
    key = str(raw)
    if prefix and prefix.split(SEP)[0] in LITERAL_BLOCKS:
        op = key[0] if key[:1] in (DELETE, REPLACE) and len(key) > 1 else ""
        return op, [key[len(op) :]]
    op, parts = split_key(key)
    return (op, parts) if op or not prefix else ("", [key])


def plain_path(raw: Any, prefix: str = "") -> str:
    """The `::` path below `prefix` that a key names, without its operator: where its location is recorded."""
    return SEP.join(entry(raw, prefix)[1])


def merge(dst: dict[str, Any], src: dict[str, Any], where: Where, prefix: str = "") -> dict[str, Any]:
    """Apply every entry of `src` to `dst`, in order, in place."""
    for raw, value in src.items():
        op, parts = entry(raw, prefix)
        apply(dst, parts, op, value, where, prefix)
    return dst


def apply(data: Any, parts: list[str], op: str, value: Any, where: Where, prefix: str = "") -> None:
    """Apply one operator at the path `parts` below `data` (whose own path is `prefix`)."""
    node = data
    key = _join(prefix, parts)
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, _join(prefix, parts[: depth + 1]), op, key, where)
    if not isinstance(node, (dict, list)):
        raise _unreachable(parts[-1], node, key, where)
    last = parts[-1]
    if op == DELETE:
        _delete(node, last, value, key, where)
        return
    current = _get(node, last)
    if op == APPEND:
        new = _appended(current, value, key, where)
    elif op == "" and isinstance(value, dict) and isinstance(current, dict):
        merge(current, value, where, key)
        return
    else:
        new = _fresh(value, key, where)
    _set(node, last, new, key, where)


def _join(prefix: str, parts: list[str]) -> str:
    return SEP.join([prefix, *parts]) if prefix else SEP.join(parts)


def _fresh(value: Any, key: str, where: Where) -> Any:
    """A value as set: a dict's own operator keys and paths are applied to an empty dict."""
    return merge({}, value, where, key) if isinstance(value, dict) else value


def _index(node: list[Any], part: str) -> int | None:
    if part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
        return int(part) % len(node)
    return None


def _get(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    index = _index(node, part)
    return _MISSING if index is None else node[index]


def _child(node: Any, part: str, key: str, op: str, full: str, where: Where) -> Any:
    if isinstance(node, dict):
        if part not in node:
            if op == DELETE:
                raise _nothing_to_delete(full, node, part, where)
            node[part] = {}
        return node[part]
    if isinstance(node, list):
        index = _index(node, part)
        if index is not None:
            return node[index]
        if op == DELETE:
            raise _nothing_to_delete(full, node, part, where)
        raise _bad_index(node, part, key, where)
    raise _unreachable(part, node, key, where)


def _unreachable(part: str, node: Any, key: str, where: Where) -> ConfigError:
    parent = key.rpartition(SEP)[0] or key
    return ConfigError(
        f"cannot reach '{part}': {parent} holds {_a(node)}, not a dict or list",
        key=key,
        location=where(key),
        suggestion=f"Set {parent} as a whole instead.",
    )


def _a(value: Any) -> str:
    name = type(value).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _set(node: Any, part: str, value: Any, key: str, where: Where) -> None:
    if isinstance(node, dict):
        node[part] = value
    elif part == str(len(node)):
        node.append(value)  # one past the end appends: `trainer::callbacks::2={...}` on two callbacks
    else:
        index = _index(node, part)
        if index is None:
            raise _bad_index(node, part, key, where)
        node[index] = value


def _bad_index(node: list[Any], part: str, key: str, where: Where) -> ConfigError:
    parent = key.rpartition(SEP)[0] or key
    return ConfigError(
        f"'{part}' is not an index of {parent}, a list of {len(node)} item(s)",
        key=key,
        location=where(key),
        suggestion=f"Use an index from 0 to {len(node)} ({len(node)} appends), or append with `+{parent}=[...]` "
        f"(in a file: `+{parent}: [...]`).",
    )


def _appended(current: Any, value: Any, key: str, where: Where) -> Any:
    if current is _MISSING or current is None:
        return _fresh(value, key, where)
    if isinstance(current, list):
        return [*current, *(value if isinstance(value, list) else [value])]
    if isinstance(current, dict) and isinstance(value, dict):
        return merge(current, value, where, key)
    raise ConfigError(
        f"`+` appends to a list or merges into a dict, but {key} holds {_a(current)}",
        key=key,
        location=where(key),
        suggestion=f"Set it instead: `{key}: ...` in a file, `{key}=...` on the command line.",
    )


def _delete(node: Any, part: str, items: Any, key: str, where: Where) -> None:
    current = _get(node, part)
    if current is _MISSING:
        raise _nothing_to_delete(key, node, part, where)
    if items is None:
        if isinstance(node, dict):
            del node[part]
        else:
            del node[_index(node, part)]  # type: ignore[arg-type]
        return
    if not isinstance(items, list):
        raise ConfigError(
            f"`~{key}` takes null (delete the key) or a list of the indices or keys to delete, not {_a(items)}",
            key=key,
            location=where(key),
            suggestion=f"Write `~{key}:` to delete it all, or e.g. `~{key}: [0, 2]`.",
        )
    if isinstance(current, list):
        indices = []
        for item in items:
            index = _index(current, str(item)) if isinstance(item, int) and not isinstance(item, bool) else None
            if index is None:
                raise ConfigError(
                    f"`~{key}` lists {item!r}, which is not an index of its {len(current)} item(s)",
                    key=key,
                    location=where(key),
                    suggestion=f"List indices from 0 to {len(current) - 1}.",
                )
            indices.append(index)
        for index in sorted(set(indices), reverse=True):
            del current[index]
    elif isinstance(current, dict):
        for item in items:
            if str(item) not in current:
                raise ConfigError(
                    f"`~{key}` lists '{item}', which is not a key there",
                    key=key,
                    location=where(key),
                    suggestion=did_you_mean(str(item), current, fallback=f"Keys there: {', '.join(current)}."),
                )
            del current[str(item)]
    else:
        raise ConfigError(
            f"`~{key}` lists items, but {key} holds {_a(current)}, not a list or dict",
            key=key,
            location=where(key),
            suggestion=f"Write `~{key}:` (null) to delete the key itself.",
        )


def _nothing_to_delete(key: str, node: Any, part: str, where: Where) -> ConfigError:
    siblings = [str(k) for k in node] if isinstance(node, dict) else []
    there = f"'{part}' (a list of {len(node)} item(s))" if isinstance(node, list) else f"'{part}'"
    return ConfigError(
        f"`~{key}` deletes nothing: there is no {there}",
        key=key,
        location=where(key),
        suggestion=did_you_mean(part, siblings, fallback="Check the key path against the config so far."),
    )
