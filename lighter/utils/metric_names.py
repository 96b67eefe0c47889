"""Short names for logged metrics, for the progress bar, the per-epoch log lines and the end-of-run summary.

Logged names are long so that trackers group them (`val/metrics/accuracy/epoch`, or the older `val/metrics/accuracy`
and `train/loss_step`); on a terminal line `val/accuracy` says the same. Both spellings shorten alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REDUCTIONS = ("step", "epoch")  # Lightning's `on_step`/`on_epoch` copies of one logged value
METRICS_PART = "metrics"
OPTIMIZER_STATE = ("lr", "momentum", "beta1")  # logged under train/ by the System, not results


def split_name(key: str) -> tuple[str, str | None]:
    """`val/metrics/accuracy/epoch` -> (`val/accuracy`, `epoch`); `train/loss_step` -> (`train/loss`, `step`)."""
    parts = key.split("/")
    reduction = None
    if len(parts) > 1 and parts[-1] in REDUCTIONS:
        reduction = parts.pop()
    else:
        for suffix in REDUCTIONS:
            if parts[-1].endswith(f"_{suffix}"):
                parts[-1], reduction = parts[-1][: -len(suffix) - 1], suffix
    kept = [p for i, p in enumerate(parts) if not (p == METRICS_PART and 0 < i < len(parts) - 1)]
    return "/".join(kept), reduction


def short_name(key: str) -> str:
    return split_name(key)[0]


def _number(value: Any) -> float | None:
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def shorten(metrics: Mapping[str, Any], prefer: str = "epoch") -> dict[str, float]:
    """Scalar metrics under short names. Where a step and an epoch copy share a name, `prefer` picks one."""
    chosen: dict[str, tuple[bool, float]] = {}
    for key, value in metrics.items():
        number = _number(value)
        if number is None:
            continue
        name, reduction = split_name(key)
        preferred = reduction in (prefer, None)
        if name not in chosen or (preferred and not chosen[name][0]):
            chosen[name] = (preferred, number)
    return {name: number for name, (_, number) in chosen.items()}


def is_headline(name: str) -> bool:
    """A loss or a metric of a mode (`val/loss`, `val/accuracy`), not a loss term, lr or momentum."""
    mode, _, rest = name.partition("/")
    return (
        mode in ("train", "val", "test") and bool(rest) and "/" not in rest and rest not in ("lr", "momentum", "beta1")
    )


def format_metrics(metrics: Mapping[str, float]) -> str:
    return "  ".join(f"{name} {value:.4g}" for name, value in metrics.items())
