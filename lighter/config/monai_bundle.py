"""MONAI's config engine (its parser, items and resolver) without the import of all of MONAI.

`import monai` runs `monai/__init__`, which imports every MONAI subpackage (about 430 modules: networks,
transforms, apps, and the tracker integrations it finds installed), 0.5 to 1.1 s; `monai/bundle/__init__` does
the same through its scripts. The parser needs 25 of those modules. So `monai` and `monai.bundle` enter
`sys.modules` as packages whose `__init__` has not run yet, and the parser's own modules import below them.

MONAI's own `__init__`s run, on those same module objects, as soon as anything asks for more (`load_all`):
- an attribute either package lacks: `$monai.networks.nets.UNet(...)`, a `_target_: monai.losses.DiceLoss`
  (located attribute by attribute), `from monai.bundle import ConfigWorkflow`, `import monai; monai.transforms`;
- a bare `_target_` name such as `UNet`, which MONAI finds by scanning the MONAI modules loaded (lighter's
  locator calls `load_all` first).
From then on `monai` is exactly what `import monai` makes. Where MONAI was imported before lighter, nothing changes.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

_pending: list[ModuleType] = []  # packages whose __init__ is deferred, in the order they must run


def _defer(name: str) -> ModuleType:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"No module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:  # PEP 562: called only for what the module does not have yet
        sub = sys.modules.get(f"{name}.{attr}")
        if sub is not None:  # `from monai import transforms` inside MONAI, while a submodule is importing
            return sub
        if attr.startswith("__") and attr != "__all__":  # introspection (`__wrapped__`, ...) finds nothing
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        load_all()
        return getattr(module, attr)

    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules[name] = module
    _pending.append(module)
    return module


class _AllOfMonaiFirst(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Any other MONAI module imported while MONAI's `__init__` is deferred loads all of MONAI first.

    MONAI's subpackages import each other in circles that only `monai/__init__`'s order resolves (`import
    monai.networks` alone fails), so `import monai.networks.nets` runs that order, then finds its module loaded.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("monai.") or not _pending:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        load_all()
        module = importlib.import_module(spec.name)  # loaded by MONAI's own order, or (monai.fl, ...) now
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec  # the import system set this finder's spec on the module: put back its own


_finder = _AllOfMonaiFirst()


def load_all() -> None:
    """Run the deferred `__init__` of `monai`, then of `monai.bundle`: what `import monai` does."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    while _pending:
        module = _pending.pop(0)
        del module.__getattr__  # type: ignore[attr-defined]
        module.__spec__.loader.exec_module(module)  # type: ignore[union-attr]


def deferred() -> bool:
    """True while MONAI's package import is still skipped."""
    return bool(_pending)


if "monai" not in sys.modules:
    monai = _defer("monai")
    # The one package attribute MONAI's own modules read while importing (`from monai import __version__`).
    from monai._version import get_versions  # lazy: only while MONAI's own __init__ is deferred

    monai.__version__ = str(get_versions().get("version", "0+unknown"))
    monai.bundle = _defer("monai.bundle")  # type: ignore[attr-defined]

from monai.bundle.config_item import ComponentLocator, ConfigExpression  # noqa: E402
from monai.bundle.config_parser import ConfigParser  # noqa: E402
from monai.bundle.reference_resolver import ReferenceResolver  # noqa: E402

if _pending:  # from here on, another MONAI module means all of MONAI
    sys.meta_path.insert(0, _finder)

__all__ = ["ComponentLocator", "ConfigExpression", "ConfigParser", "ReferenceResolver", "deferred", "load_all"]
