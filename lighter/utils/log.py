"""`lighter`'s loggers: INFO and up to stderr, from the process of rank 0 only.

Freezing, weight loading and writers report what they did at INFO; without a handler Python would drop it.
A handler is added only when the application has configured no logging of its own.
"""

from __future__ import annotations

import logging

from lightning_fabric.utilities.rank_zero import rank_zero_only

ROOT = "lighter"


def _rank() -> int:
    return int(getattr(rank_zero_only, "rank", 0))  # Lightning sets it once it knows the process's rank


class _RankZeroFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _rank() == 0


def get_logger(name: str) -> logging.Logger:
    """The logger for module `name`, printing INFO on rank 0 unless logging is configured elsewhere."""
    root = logging.getLogger(ROOT)
    if not root.handlers and not logging.getLogger().hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    if root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logger = logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")
    if not any(isinstance(f, _RankZeroFilter) for f in logger.filters):
        logger.addFilter(_RankZeroFilter())
    return logger
