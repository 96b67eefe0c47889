"""lighter: declarative, YAML-driven deep learning on PyTorch Lightning.

Heavy modules load on first use, so `lighter --help` never imports torch.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
__all__ = ["System", "__version__"]

_LAZY = {"System": "lighter.system"}


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lighter' has no attribute {name!r}")
