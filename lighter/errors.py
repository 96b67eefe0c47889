"""The one error type a user's config mistake becomes, and the helpers that word it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a key was written: a file and a 1-based line, or the command line."""

    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.file is None:
            return "from the command line"
        return f"at {self.file}:{self.line}" if self.line else f"in {self.file}"


class ConfigError(Exception):
    """A mistake in the user's config: says where (key path, file and line) and how to fix it."""

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        location: Location | None = None,
        suggestion: str | None = None,
    ):
        self.message = message
        self.key = key
        self.location = location
        self.suggestion = suggestion
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.key}: {self.message}" if self.key else self.message
        lines = [head]
        if self.location is not None:
            lines.append(f"  {self.location}")
        if self.suggestion:
            lines.append(f"  {self.suggestion}")
        return "\n".join(lines)


class KeyedError(ValueError):
    """A component's own check of its arguments that knows which config key is wrong; it becomes a ConfigError
    at that key when the component is built from a config."""

    def __init__(self, message: str, *, key: str, suggestion: str | None = None):
        self.message = message
        self.key = key
        self.suggestion = suggestion
        super().__init__(f"{key}: {message}" + (f" {suggestion}" if suggestion else ""))


def error_line(message: str) -> str:
    """How lighter tells an error it has a message for, on stderr, as `lighter` and a sweep trial both do."""
    return f"lighter: error: {message}"


def closest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates nearest to `word`, best first."""
    import difflib  # lazy: `lighter --help` imports this module, and only a mistake needs difflib

    return difflib.get_close_matches(str(word), [str(c) for c in candidates], n=n, cutoff=0.5)


def did_you_mean(word: str, candidates: Iterable[str], *, fallback: str | None = None) -> str | None:
    """'Did you mean ...?' for the nearest candidates, else the fallback."""
    candidates = list(candidates)
    matches = closest(word, candidates)
    if matches:
        return "Did you mean " + " or ".join(repr(m) for m in matches) + "?"
    return fallback
