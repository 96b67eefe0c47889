"""Whether a piece of text reads as a number: the one test the CLI (`-1` is a value, not an option) and the
dashboard (a log column of numbers is a metric) both make."""

from __future__ import annotations


def is_number(text: str) -> bool:
    """True for anything `float()` reads: `3`, `-1e-3`, `nan`, `inf`."""
    try:
        float(text)
    except ValueError:
        return False
    return True
