"""The YAML text of each trial's config: the shared config dumped once, each trial's axis values put in its place.

Dumping a config is about a millisecond of pure Python (PyYAML's representer and resolver), which for a thousand
trials is most of an expansion. A trial differs from the shared config only at its axes, so the shared config is
dumped once with a unique placeholder at each axis; a trial's text is that text with each placeholder replaced by
its value's one-line YAML. Values that don't fit on one line (lists, mappings, long strings) take the slow way,
`dump` of the whole config. Either way the text is what `yaml.safe_dump` writes for the trial's config.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from lighter.config.loader import set_key
from lighter.sweep.files import dump

_INLINE_MAX = 60  # longer strings may be folded over lines by the emitter


def _inline(value: Any) -> str | None:
    """`value` as it appears after `key: ` in block YAML, when that is one short line; else None."""
    if isinstance(value, (dict, list, tuple)) or (isinstance(value, str) and len(value) > _INLINE_MAX):
        return None
    text = dump(value)
    text = text.removesuffix("...\n").rstrip("\n")
    return None if "\n" in text else text


def with_values(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(base)
    for key, value in values.items():
        set_key(config, key, copy.deepcopy(value))
    return config


class ConfigText:
    """Render `base` with values at the given `::` key paths, fast for one-line values."""

    def __init__(self, base: dict[str, Any], keys: list[str]):
        self.base = base
        self.keys = keys
        self._cache: dict[tuple[type, str], str | None] = {}
        tag = uuid.uuid4().hex[:12]
        marks = [f"LIGHTER-AXIS-{i}-{tag}" for i in range(len(keys))]
        text = dump(with_values(base, dict(zip(keys, marks, strict=True))))
        self.pieces: list[str] | None = None
        if all(text.count(m) == 1 for m in marks):
            # Split the text at the placeholders, in the order they appear: pieces[0] mark pieces[1] mark ...
            order = sorted(range(len(keys)), key=lambda i: text.index(marks[i]))
            self.pieces, self.order, rest = [], order, text
            for i in order:
                head, _, rest = rest.partition(marks[i])
                self.pieces.append(head)
            self.pieces.append(rest)

    def _inline(self, value: Any) -> str | None:
        marker = (type(value), repr(value))
        if marker not in self._cache:
            self._cache[marker] = _inline(value)
        return self._cache[marker]

    def render(self, values: dict[str, Any]) -> str:
        inline = [self._inline(values[k]) for k in self.keys] if self.pieces is not None else [None]
        if any(text is None for text in inline):
            return dump(with_values(self.base, values))
        out = [self.pieces[0]]
        for n, i in enumerate(self.order):
            out += [inline[i], self.pieces[n + 1]]
        return "".join(out)
