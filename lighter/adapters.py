"""Adapters route data between the batch, the model, the criterion, the metrics and the logs.

Each is configured per mode under `system::adapters::<mode>::{batch,criterion,metrics,logging}`:

```yaml
system:
  adapters:
    train:
      batch: {_target_: lighter.adapters.BatchAdapter, input_accessor: image, target_accessor: label}
      criterion: {_target_: lighter.adapters.CriterionAdapter, pred_argument: 1, target_argument: 0}
```

Everything that can be decided from the arguments is decided in `__init__`, so a step only indexes and calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from types import MappingProxyType
from typing import Any

Accessor = int | str | Callable[[Any], Any] | None
Argument = int | str | None
Transforms = Callable[[Any], Any] | Sequence[Callable[[Any], Any]] | None

_ROLES = ("input", "target", "pred")  # the order values are handed to the argument adapters


def describe(value: Any, depth: int = 0) -> str:
    """A one-line picture of a batch's structure: types, keys and tensor shapes."""
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        return f"{type(value).__name__}(shape={tuple(shape)}, dtype={str(value.dtype).replace('torch.', '')})"
    if depth >= 2:
        return type(value).__name__
    if isinstance(value, Mapping):
        items = ", ".join(f"{k!r}: {describe(v, depth + 1)}" for k, v in list(value.items())[:8])
        return f"dict {{{items}}}"
    if isinstance(value, (list, tuple)):
        items = ", ".join(f"[{i}] {describe(v, depth + 1)}" for i, v in enumerate(value[:8]))
        more = ", ..." if len(value) > 8 else ""
        return f"{type(value).__name__} of {len(value)} ({items}{more})"
    return type(value).__name__


class BatchAccessError(ValueError):
    """An accessor that does not fit the batch; the message shows the batch's structure.

    `mode` is set by the System that met it, so the runner can name the config key.
    """

    def __init__(self, message: str, role: str, hint: str):
        super().__init__(f"{message}. {hint}")
        self.message, self.role, self.hint = message, role, hint
        self.mode: str | None = None


def _accessor(accessor: Accessor, role: str) -> Callable[[Any], Any] | None:
    if accessor is None:
        return None
    if callable(accessor):
        return accessor
    if not isinstance(accessor, (int, str)) or isinstance(accessor, bool):
        raise TypeError(f"BatchAdapter {role}_accessor must be an int index, a str key or a callable, got {accessor!r}")
    kind = "index" if isinstance(accessor, int) else "key"

    def access(batch: Any) -> Any:
        try:
            return batch[accessor]
        except (KeyError, IndexError, TypeError) as err:
            hint = "Use an int index for a list or tuple batch, a str key for a dict batch, or a callable."
            raise BatchAccessError(
                f"BatchAdapter {role}_accessor={accessor!r} ({kind}) does not fit the batch, "
                f"which is a {describe(batch)}",
                role,
                hint,
            ) from err

    return access


class BatchAdapter:
    """Picks `input`, `target` and `identifier` out of a batch by index, key or callable.

    ```yaml
    batch: {_target_: lighter.adapters.BatchAdapter, input_accessor: image, target_accessor: label,
            identifier_accessor: name}
    ```
    """

    def __init__(
        self,
        input_accessor: Accessor,
        target_accessor: Accessor = None,
        identifier_accessor: Accessor = None,
    ):
        self.input_accessor = input_accessor
        self.target_accessor = target_accessor
        self.identifier_accessor = identifier_accessor
        self._get_input = _accessor(input_accessor, "input")
        self._get_target = _accessor(target_accessor, "target")
        self._get_identifier = _accessor(identifier_accessor, "identifier")

    def __call__(self, batch: Any) -> tuple[Any, Any, Any]:
        """(input, target, identifier); a missing accessor gives None."""
        input = self._get_input(batch) if self._get_input else None
        target = self._get_target(batch) if self._get_target else None
        identifier = self._get_identifier(batch) if self._get_identifier else None
        return input, target, identifier


def _compose(transforms: Transforms, name: str) -> Callable[[Any], Any] | None:
    if transforms is None:
        return None
    chain = list(transforms) if isinstance(transforms, (list, tuple)) else [transforms]
    for i, fn in enumerate(chain):
        if not callable(fn):
            raise TypeError(
                f"{name}[{i}] is a {type(fn).__name__}, not a callable. A transform given as a component "
                "needs `_mode_: callable`, e.g. {_target_: torch.argmax, _mode_: callable, dim: 1}."
            )
    if not chain:
        return None
    if len(chain) == 1:
        return chain[0]

    def composed(value: Any) -> Any:
        for fn in chain:
            value = fn(value)
        return value

    return composed


class LoggingAdapter:
    """Transforms `input`, `target` and `pred` before they are logged or returned by predict."""

    def __init__(
        self,
        input_transforms: Transforms = None,
        target_transforms: Transforms = None,
        pred_transforms: Transforms = None,
    ):
        self.input_transforms = input_transforms
        self.target_transforms = target_transforms
        self.pred_transforms = pred_transforms
        self._transforms = tuple(
            _compose(t, f"{role}_transforms")
            for role, t in zip(_ROLES, (input_transforms, target_transforms, pred_transforms), strict=True)
        )
        self._identity = all(t is None for t in self._transforms)

    def __call__(self, input: Any, target: Any, pred: Any) -> tuple[Any, Any, Any]:
        if self._identity:
            return input, target, pred
        values = (input, target, pred)
        return tuple(v if t is None else t(v) for t, v in zip(self._transforms, values, strict=True))  # type: ignore[return-value]


_NO_KEYWORDS: Mapping[str, Any] = MappingProxyType({})


def _picker(indices: tuple[int, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function taking the values at `indices`, in order; itemgetter keeps the usual two-argument case in C."""
    if len(indices) > 1:
        return itemgetter(*indices)
    if indices:
        (index,) = indices
        return lambda values: (values[index],)
    return lambda values: ()


class _ArgumentsAdapter(LoggingAdapter):
    """Transforms `input`, `target`, `pred`, then calls a function with each at a position or keyword."""

    def __init__(
        self,
        pred_argument: Argument = None,
        target_argument: Argument = None,
        input_argument: Argument = None,
        pred_transforms: Transforms = None,
        target_transforms: Transforms = None,
        input_transforms: Transforms = None,
    ):
        super().__init__(input_transforms, target_transforms, pred_transforms)
        if pred_argument is None and target_argument is None and input_argument is None:
            pred_argument, target_argument = 0, 1  # the default call: fn(pred, target)
        self.pred_argument = pred_argument
        self.target_argument = target_argument
        self.input_argument = input_argument
        name = type(self).__name__
        arguments = dict(zip(_ROLES, (input_argument, target_argument, pred_argument), strict=True))
        for role, transform in zip(_ROLES, (input_transforms, target_transforms, pred_transforms), strict=True):
            if transform is not None and arguments[role] is None:
                raise ValueError(f"{name} has {role}_transforms but no {role}_argument: set {role}_argument too.")
        positional: dict[int, int] = {}
        keywords: list[tuple[str, int]] = []
        for index, role in enumerate(_ROLES):
            arg = arguments[role]
            if arg is None:
                continue
            if isinstance(arg, bool) or not isinstance(arg, (int, str)):
                raise TypeError(f"{name} {role}_argument must be a position (int) or a keyword (str), got {arg!r}")
            if isinstance(arg, int):
                if arg in positional:
                    raise ValueError(f"{name}: two arguments share position {arg}.")
                positional[arg] = index
            else:
                keywords.append((arg, index))
        if sorted(positional) != list(range(len(positional))):
            raise ValueError(
                f"{name}: positions {sorted(positional)} leave a gap; positions must be 0, 1, ... without holes."
            )
        self._pick = _picker(tuple(positional[p] for p in sorted(positional)))
        self._keywords = tuple(keywords)
        self.takes_keywords = bool(keywords)

    def arguments(self, input: Any, target: Any, pred: Any) -> tuple[tuple[Any, ...], Mapping[str, Any]]:
        """The positional and keyword arguments of the call, transformed."""
        values = (input, target, pred) if self._identity else LoggingAdapter.__call__(self, input, target, pred)
        if not self._keywords:
            return self._pick(values), _NO_KEYWORDS
        return self._pick(values), {k: values[i] for k, i in self._keywords}

    def __call__(self, fn: Callable[..., Any], input: Any, target: Any, pred: Any) -> Any:  # type: ignore[override]
        args, kwargs = self.arguments(input, target, pred)
        return fn(*args, **kwargs)


class CriterionAdapter(_ArgumentsAdapter):
    """Calls the criterion with `pred`, `target` and `input` where it wants them.

    Without any `*_argument` the call is `criterion(pred, target)`.
    """


class MetricsAdapter(_ArgumentsAdapter):
    """Calls the metrics with `pred`, `target` and `input` where they want them.

    Without any `*_argument` the call is `metrics(pred, target)`.
    """
