"""`Freezer`: keep chosen parameters fixed during fit, for the whole run or until a step or an epoch."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
from torch import nn

from lighter.errors import ConfigError, did_you_mean
from lighter.utils.log import get_logger

log = get_logger(__name__)
MODEL_PREFIX = "model."  # how LightningModule.named_parameters() shows the System's model
CALLBACKS_KEY = "trainer::callbacks"


def _as_list(value: str | Sequence[str] | None, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not all(isinstance(v, str) for v in value):
        raise TypeError(f"Freezer {name} must be a parameter name or a list of them, got {value!r}")
    return list(value)


def _positive(value: int | None, name: str, unit: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"Freezer {name} must be a positive int (the first {unit} trained unfrozen), got {value!r}")
    return value


class Freezer(pl.Callback):
    """Freezes parameters chosen by name or prefix, minus exceptions; optionally unfreezes them later.

    ```yaml
    trainer:
      callbacks:
        - _target_: lighter.callbacks.Freezer
          name_starts_with: [features.]      # names as in `system::model`, `model.` prefix optional
          except_names: [features.0.bias]
          until_epoch: 2                     # train everything from epoch 2 on; leave out to freeze for good
    ```

    Frozen parameters get `requires_grad=False` and no gradient, so optimizers skip them: no update, no weight
    decay, no momentum. Buffers such as BatchNorm's running statistics are not parameters and keep updating.
    Selection errors name the closest parameter names, and are raised when fit starts, before any step.
    """

    def __init__(
        self,
        names: str | Sequence[str] | None = None,
        name_starts_with: str | Sequence[str] | None = None,
        except_names: str | Sequence[str] | None = None,
        except_name_starts_with: str | Sequence[str] | None = None,
        until_step: int | None = None,
        until_epoch: int | None = None,
    ):
        super().__init__()
        self.names = _as_list(names, "names")
        self.name_starts_with = _as_list(name_starts_with, "name_starts_with")
        self.except_names = _as_list(except_names, "except_names")
        self.except_name_starts_with = _as_list(except_name_starts_with, "except_name_starts_with")
        if not self.names and not self.name_starts_with:
            raise ValueError("Freezer selects nothing: give `names`, `name_starts_with` or both.")
        self.until_step = _positive(until_step, "until_step", "step")
        self.until_epoch = _positive(until_epoch, "until_epoch", "epoch")
        if until_step is not None and until_epoch is not None:
            raise ValueError(
                f"Freezer got until_step={until_step} and until_epoch={until_epoch}; give one of them, "
                "or neither to keep the parameters frozen for the whole run."
            )
        self.frozen: dict[str, nn.Parameter] = {}  # name relative to the model -> parameter

    # ---- selection ------------------------------------------------------------------------------
    @staticmethod
    def _model(pl_module: pl.LightningModule) -> nn.Module:
        model = getattr(pl_module, "model", None)
        return model if isinstance(model, nn.Module) else pl_module

    def _select(self, model: nn.Module, aliased: bool) -> dict[str, nn.Parameter]:
        params = dict(model.named_parameters())
        # Prefixes worth suggesting: the modules that hold parameters, e.g. `features.` and `features.0.`.
        modules = list(dict.fromkeys(n[: i + 1] for n in params for i, ch in enumerate(n) if ch == "."))

        def relative(name: str, known: bool) -> str:
            # Accept `model.features.0.weight` as LightningModule.named_parameters() spells it.
            if aliased and name.startswith(MODEL_PREFIX) and not known:
                return name[len(MODEL_PREFIX) :]
            return name

        def exact(option: str, names: list[str]) -> set[str]:
            found = set()
            for name in names:
                name = relative(name, name in params)
                if name not in params:
                    self._no_match(option, name, list(params), list(params))
                found.add(name)
            return found

        def prefixed(option: str, prefixes: list[str]) -> set[str]:
            found = set()
            for prefix in prefixes:
                prefix = relative(prefix, any(n.startswith(prefix) for n in params))
                matches = {n for n in params if n.startswith(prefix)}
                if not matches:
                    self._no_match(option, prefix, modules + list(params), list(params))
                found |= matches
            return found

        chosen = exact("names", self.names) | prefixed("name_starts_with", self.name_starts_with)
        excluded = exact("except_names", self.except_names)
        excluded |= prefixed("except_name_starts_with", self.except_name_starts_with)
        selected = [n for n in params if n in chosen and n not in excluded]  # model order, for the log
        if not selected:
            raise ConfigError(
                f"Freezer: the exceptions ({', '.join(self.except_names + self.except_name_starts_with)}) "
                "remove every parameter that `names`/`name_starts_with` chose; nothing would be frozen",
                key=CALLBACKS_KEY,
                suggestion="Narrow except_names/except_name_starts_with, or widen the selection.",
            )
        return {n: params[n] for n in selected}

    @staticmethod
    def _no_match(option: str, name: str, candidates: list[str], params: list[str]) -> None:
        examples = ", ".join(repr(p) for p in params[:4]) or "none: the model has no parameters"
        fallback = f"Names are relative to system::model; its parameters include {examples}."
        raise ConfigError(
            f"Freezer {option}: {name!r} matches no parameter of the model",
            key=CALLBACKS_KEY,
            suggestion=did_you_mean(name, candidates, fallback=fallback),
        )

    # ---- freezing --------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if trainer.world_size > 1 and (self.until_step or self.until_epoch):
            # DDP registers the trainable parameters once, when it wraps the model (after this hook):
            # parameters unfrozen later would train without their gradients being averaged across processes.
            raise ConfigError(
                f"Freezer with until_step/until_epoch cannot run on {trainer.world_size} processes: DDP would not "
                "synchronise the gradients of parameters unfrozen mid-run",
                key=CALLBACKS_KEY,
                suggestion="Freeze for the whole run (drop until_*), or fit in two runs: frozen first, "
                "then from its weights (lighter.utils.load_weights) without the Freezer.",
            )
        model = self._model(pl_module)
        self.frozen = self._select(model, aliased=model is not pl_module)
        for param in self.frozen.values():
            param.requires_grad_(False)
            param.grad = None  # a leftover gradient would still feed weight decay and momentum
        count = sum(p.numel() for p in self.frozen.values())
        until = self._until()
        log.info(f"Freezer: froze {len(self.frozen)} parameter tensors ({count:,} values){until}: {self._names()}")

    def _until(self) -> str:
        if self.until_step is not None:
            return f" until step {self.until_step}"
        if self.until_epoch is not None:
            return f" until epoch {self.until_epoch}"
        return ""

    def _names(self, limit: int = 20) -> str:
        names = list(self.frozen)
        more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
        return ", ".join(names[:limit]) + more

    def _unfreeze(self, when: str) -> None:
        for param in self.frozen.values():
            param.requires_grad_(True)
        log.info(f"Freezer: unfroze {len(self.frozen)} parameter tensors at {when}: {self._names()}")
        self.frozen = {}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.frozen and self.until_epoch is not None and trainer.current_epoch >= self.until_epoch:
            self._unfreeze(f"epoch {trainer.current_epoch}")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if self.frozen and self.until_step is not None and trainer.global_step >= self.until_step:
            self._unfreeze(f"step {trainer.global_step}")
