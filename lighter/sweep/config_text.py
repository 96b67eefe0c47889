"""The YAML text of many similar files (trial configs, trial records): dumped once, values put in place per file.

Dumping a config is about a millisecond of pure Python (PyYAML's representer and resolver), which for a thousand
trials is most of an expansion. Trials differ only in a few values, so their data is dumped once with a unique
placeholder at each such value; a trial's text is that text with each placeholder replaced by its value's one-line
YAML. A value that does not fit on one line (a list, a mapping, a long string) takes the slow way, a dump of the
whole data. Either way the text is what `yaml.safe_dump` writes (tested against it).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from lighter.config.loader import set_key
from lighter.run.files import dump

_INLINE_MAX = 60  # longer strings may be folded over lines by the emitter


def _inline(value: Any) -> str | None:
    """`value` as it appears after `key: ` in block YAML, when that is one short line; else None."""
    if isinstance(value, (dict, list, tuple)) or (isinstance(value, str) and len(value) > _INLINE_MAX):
        return None
    text = dump(value).removesuffix("...\n").rstrip("\n")
    return None if "\n" in text else text


class Template:
    """`build(values)` as YAML text, for many lists of `count` values: `build` places each value in the data."""

    def __init__(self, build: Callable[[list[Any]], Any], count: int):
        self.build = build
        self._cache: dict[tuple[type, str], str | None] = {}
        tag = uuid.uuid4().hex[:12]
        marks = [f"LIGHTER-VALUE-{i}-{tag}" for i in range(count)]
        text = dump(build(marks))
        self.pieces: list[str] | None = None
        if all(text.count(m) == 1 for m in marks):
            # The text split at the placeholders, in the order they appear: pieces[0] mark pieces[1] mark ...
            self.order = sorted(range(count), key=lambda i: text.index(marks[i]))
            self.pieces, rest = [], text
            for i in self.order:
                head, _, rest = rest.partition(marks[i])
                self.pieces.append(head)
            self.pieces.append(rest)

    def _inline(self, value: Any) -> str | None:
        marker = (type(value), repr(value))
        if marker not in self._cache:
            self._cache[marker] = _inline(value)
        return self._cache[marker]

    def render(self, values: list[Any]) -> str:
        inline = [self._inline(v) for v in values] if self.pieces is not None else [None]
        if any(text is None for text in inline):
            return dump(self.build(values))
        out = [self.pieces[0]]
        for n, i in enumerate(self.order):
            out += [inline[i], self.pieces[n + 1]]
        return "".join(out)


def with_values(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with each `::` key path in `values` set."""
    config = copy.deepcopy(base)
    for key, value in values.items():
        set_key(config, key, copy.deepcopy(value))
    return config


class ConfigText:
    """A trial's config.yaml: `base` with values at the axes' key paths."""

    def __init__(self, base: dict[str, Any], keys: list[str]):
        self.keys = keys
        self.template = Template(lambda values: with_values(base, dict(zip(keys, values, strict=True))), len(keys))

    def render(self, values: dict[str, Any]) -> str:
        return self.template.render([values[k] for k in self.keys])


class RecordText:
    """A new trial's trial.yaml: `record` with its `trial` name, `axes` values and `config_hash` filled in."""

    def __init__(self, record: dict[str, Any], axis_keys: list[str]):
        self.keys = axis_keys

        def build(values: list[Any]) -> dict[str, Any]:
            name, digest, *axes = values
            filled = {**record, "trial": name, "axes": dict(zip(axis_keys, axes, strict=True))}
            return {**filled, "config_hash": digest}

        self.template = Template(build, 2 + len(axis_keys))

    def render(self, name: str, digest: str, axes: dict[str, Any]) -> str:
        return self.template.render([name, digest, *(axes[k] for k in self.keys)])
