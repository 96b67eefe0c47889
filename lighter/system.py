"""`System`: the LightningModule that holds a config's components and routes data between them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import Metric, MetricCollection

from lighter.adapters import BatchAccessError, BatchAdapter, CriterionAdapter, LoggingAdapter, MetricsAdapter
from lighter.errors import KeyedError, did_you_mean
from lighter.forked_names import ForkedName
from lighter.names import (
    ADAPTER_KINDS,
    EPOCH,
    LOSS_MODES,
    METRIC_MODES,
    OPTIMIZER,
    Mode,
    loss_name,
    metric_name,
    per,
)
from lighter.utils.loaders import with_batch_size

MetricsArg = Metric | Sequence[Metric] | Mapping[str, Metric] | None
_NO_KWARGS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class _Adapters:
    batch: Callable[[Any], tuple[Any, Any, Any]]
    criterion: Callable[..., Any]
    metrics: Callable[..., Any]
    logging: Callable[[Any, Any, Any], tuple[Any, Any, Any]]


@dataclass(frozen=True)
class _Route:
    """What one mode's step does, decided in `__init__` so that a step only looks it up."""

    adapters: _Adapters
    mode: str
    loss_name: ForkedName | None  # None in modes that compute no loss
    metrics: tuple[tuple[ForkedName, Metric], ...]
    sub_loss_names: dict[str, ForkedName]  # a dict criterion's keys, known at its first call
    collection: MetricCollection | None
    # With positional arguments only, the collection's forward just hands them to each metric (no compute
    # groups: see _collect_metrics); calling each directly skips its per-call bookkeeping and result dict.
    direct_metrics: bool


def _default_adapters(mode: Mode) -> dict[str, Any]:
    # Lighter's defaults: batches are (input, target), except in predict, where the batch is the input.
    batch = BatchAdapter(input_accessor=_whole_batch) if mode is Mode.PREDICT else BatchAdapter(0, 1)
    return {"batch": batch, "criterion": CriterionAdapter(), "metrics": MetricsAdapter(), "logging": LoggingAdapter()}


def _whole_batch(batch: Any) -> Any:
    return batch


def _check_keys(given: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in given:
        if key not in allowed:
            hint = did_you_mean(key, allowed, fallback=f"Valid keys: {', '.join(allowed)}.")
            raise ValueError(f"{where}::{key} is not a valid key. {hint}")


def _check_metric_keywords(adapter: Any, metrics: Sequence[tuple[ForkedName, Metric]], mode: Mode) -> None:
    """A keyword the MetricsAdapter passes that no metric's `update` takes would end, at the first step, in
    `update() missing ...` (MetricCollection drops keywords a metric does not take): name the adapter key now."""
    keywords = getattr(adapter, "_keywords", ())
    if not metrics or not keywords:
        return
    accepted: set[str] = set()
    for _, metric in metrics:
        params = inspect.signature(metric.update).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return
        accepted.update(p.name for p in params if p.kind is not p.VAR_POSITIONAL)
    for keyword, index in keywords:
        if keyword not in accepted:
            role = ("input", "target", "pred")[index]
            names = ", ".join(sorted(accepted))
            raise KeyedError(
                f"is {keyword!r}, a keyword that no metric of system::metrics::{mode.value} takes in update()",
                key=f"system::adapters::{mode.value}::metrics::{role}_argument",
                suggestion=" ".join(filter(None, [did_you_mean(keyword, accepted), f"Their update() takes: {names}."])),
            )


def _batch_size(value: Any) -> int | None:
    """The leading dimension of the first tensor found, so Lightning need not guess."""
    if isinstance(value, torch.Tensor):
        return value.shape[0] if value.ndim else 1
    if isinstance(value, Mapping):
        value = next(iter(value.values()), None)
        return _batch_size(value)
    if isinstance(value, (list, tuple)) and value:
        return _batch_size(value[0])
    return None


class System(pl.LightningModule):
    """Model, optimization, data and metrics for every mode, wired by adapters.

    ```yaml
    system:
      _target_: lighter.System
      model: {_target_: torch.nn.Linear, in_features: 64, out_features: 10}
      criterion: {_target_: torch.nn.CrossEntropyLoss}
      optimizer: {_target_: torch.optim.Adam, params: "$@system::model.parameters()", lr: 0.001}
      metrics:
        train: [{_target_: torchmetrics.Accuracy, task: multiclass, num_classes: 10}]
        val: "%#train"
      dataloaders:
        train: {_target_: torch.utils.data.DataLoader, dataset: ..., batch_size: 32}
    ```

    `metrics` per mode (`train`, `val`, `test`) is a Metric, a list or a dict; `scheduler` is an LR scheduler
    or a dict in Lightning's `lr_scheduler` form; `inferer` replaces `model(input)` outside training.
    """

    def __init__(
        self,
        model: nn.Module,
        dataloaders: Mapping[str, Any] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        criterion: Callable[..., Any] | None = None,
        metrics: Mapping[str, MetricsArg] | None = None,
        adapters: Mapping[str, Mapping[str, Any]] | None = None,
        inferer: Callable[..., Any] | None = None,
    ):
        super().__init__()
        modes = [m.value for m in Mode]
        self.model = model
        self.criterion = criterion
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.inferer = inferer
        self.dataloaders = dict(dataloaders or {})
        _check_keys(self.dataloaders, modes, "system::dataloaders")

        metrics = dict(metrics or {})
        _check_keys(metrics, [m.value for m in METRIC_MODES], "system::metrics")
        self._metrics: dict[Mode, list[tuple[ForkedName, Metric]]] = {}
        self._metric_collections: dict[Mode, MetricCollection] = {}
        for mode in METRIC_MODES:
            collection = self._collect_metrics(metrics.get(mode.value), mode)
            if collection is not None:
                # Registered as submodules so they move with the model; names are built once, here.
                setattr(self, f"{mode.value}_metrics", collection)
                self._metric_collections[mode] = collection
                self._metrics[mode] = [(ForkedName(metric_name(mode.value, name)), m) for name, m in collection.items()]

        adapters = dict(adapters or {})
        _check_keys(adapters, modes, "system::adapters")
        self._adapters: dict[Mode, _Adapters] = {}
        for mode in Mode:
            given = dict(adapters.get(mode.value) or {})
            _check_keys(given, ADAPTER_KINDS, f"system::adapters::{mode.value}")
            self._adapters[mode] = _Adapters(**{**_default_adapters(mode), **given})
        self._routes = {mode: self._route(mode) for mode in Mode}
        for mode in METRIC_MODES:
            _check_metric_keywords(self._adapters[mode].metrics, self._metrics.get(mode, ()), mode)

        # `forward` may ask for the epoch or the global step; look once, not every step.
        forward_params = inspect.signature(model.forward).parameters
        self._forward_extras = tuple(name for name in ("epoch", "step") if name in forward_params)

    def _route(self, mode: Mode) -> _Route:
        adapters = self._adapters[mode]
        metrics_adapter = adapters.metrics
        return _Route(
            adapters=adapters,
            mode=mode.value,
            loss_name=ForkedName(loss_name(mode.value)) if mode in LOSS_MODES else None,
            metrics=tuple(self._metrics.get(mode, ())),
            sub_loss_names={},
            collection=self._metric_collections.get(mode),
            direct_metrics=type(metrics_adapter) is MetricsAdapter and not metrics_adapter.takes_keywords,
        )

    def logged_names(self, modes: Sequence[Mode]) -> tuple[set[str], tuple[str, ...]]:
        """The names the steps of `modes` will log, and the prefixes of sub-loss names (known only once a
        criterion that returns a dict has run): what a `monitor:` can follow."""
        names: set[str] = set()
        prefixes: list[str] = []
        for mode in modes:
            route = self._routes[mode]
            if route.loss_name is not None and self.criterion is not None:
                names.update((route.loss_name.step, route.loss_name.epoch))
                prefixes.append(loss_name(mode.value) + "/")
            names.update(name for forked, _ in route.metrics for name in (forked.step, forked.epoch))
        if Mode.TRAIN in modes and self.optimizer is not None:
            base = f"{Mode.TRAIN.value}/{OPTIMIZER}/{type(self.optimizer).__name__}"
            groups = self.optimizer.param_groups
            for j, group in enumerate(groups):
                suffix = f"/group{j + 1}" if len(groups) > 1 else ""
                names.add(f"{base}/lr{suffix}")
                if "momentum" in group or "betas" in group:
                    names.add(f"{base}/momentum{suffix}")
        return names, tuple(prefixes)

    @staticmethod
    def _collect_metrics(metrics: MetricsArg, mode: Mode) -> MetricCollection | None:
        if metrics is None or (isinstance(metrics, (list, tuple, dict)) and not metrics):
            return None
        if isinstance(metrics, (Metric, MetricCollection)):
            metrics = [metrics]
        try:
            # compute_groups=False: each metric is logged on its own, so each must own its state.
            return MetricCollection(metrics, compute_groups=False)  # type: ignore[arg-type]
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"system::metrics::{mode.value} must be torchmetrics Metrics (one, a list or a dict): {err}"
            ) from err

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, input: Any) -> Any:
        return self.model(input, **self._forward_kwargs())

    def _forward_kwargs(self) -> Mapping[str, int]:
        if not self._forward_extras:
            return _NO_KWARGS
        values = {"epoch": self.current_epoch, "step": self.global_step}
        return {name: values[name] for name in self._forward_extras}

    def _predict(self, input: Any, mode: Mode) -> Any:
        kwargs = self._forward_kwargs() if self._forward_extras else _NO_KWARGS
        if self.inferer is not None and mode is not Mode.TRAIN:
            return self.inferer(input, self.model, **kwargs)
        return self.model(input, **kwargs)

    # ---- steps: the mode is an argument, never state -------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        return self._step(batch, Mode.TRAIN)

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return self._step(batch, Mode.VAL)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return self._step(batch, Mode.TEST)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return self._step(batch, Mode.PREDICT)

    def _step(self, batch: Any, mode: Mode) -> dict[str, Any]:
        route = self._routes[mode]
        adapters = route.adapters
        try:
            input, target, identifier = adapters.batch(batch)
        except BatchAccessError as err:
            err.mode = mode.value
            raise
        pred = self._predict(input, mode)
        output: dict[str, Any] = {}
        batch_size = _batch_size(input)

        criterion = self.criterion
        if route.loss_name is not None and criterion is not None:
            loss = adapters.criterion(criterion, input, target, pred)
            output["loss"] = self._log_loss(loss, route, batch_size)

        if route.metrics:
            if route.direct_metrics:
                args = adapters.metrics.arguments(input, target, pred)[0]
                for _, metric in route.metrics:
                    metric(*args)
            else:
                adapters.metrics(route.collection, input, target, pred)
            # One call per metric: Lightning reports its batch value and, at the epoch's end, its compute().
            for name, metric in route.metrics:
                self.log(name, metric, on_step=True, on_epoch=True, batch_size=batch_size)

        input, target, pred = adapters.logging(input, target, pred)
        if mode is Mode.PREDICT:
            return {"pred": pred, "identifier": identifier}
        output.update(input=input, target=target, pred=pred, identifier=identifier)
        return output

    def _log_loss(self, loss: Any, route: _Route, batch_size: int | None) -> torch.Tensor:
        if not isinstance(loss, torch.Tensor) and isinstance(loss, Mapping):
            if "total" not in loss:
                raise ValueError(
                    f"The criterion returned a dict with keys {sorted(loss)}; it needs a 'total' key, "
                    "the loss to optimize. The other keys are logged as sub-losses."
                )
            # Every entry, `total` included, under `{mode}/loss/{name}/...` as upstream Lighter logs them.
            names = route.sub_loss_names
            for name, value in loss.items():
                forked = names.get(name)
                if forked is None:
                    forked = names[name] = ForkedName(loss_name(route.mode, name))
                self.log(forked, value, on_step=True, on_epoch=True, sync_dist=True, batch_size=batch_size)
            loss = loss["total"]
        self.log(route.loss_name, loss, on_step=True, on_epoch=True, sync_dist=True, prog_bar=True,  # type: ignore[arg-type]
                 batch_size=batch_size)  # fmt: skip
        return loss

    # ---- optimization ---------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        if self.optimizer is None:
            return None
        if self.scheduler is None:
            return self.optimizer
        scheduler = dict(self.scheduler) if isinstance(self.scheduler, Mapping) else {"scheduler": self.scheduler}
        if isinstance(scheduler["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau):
            mode = Mode.VAL if Mode.VAL.value in self.dataloaders else Mode.TRAIN
            scheduler.setdefault("monitor", per(loss_name(mode.value), EPOCH))
        return {"optimizer": self.optimizer, "lr_scheduler": scheduler}

    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        for name, value in (("criterion", self.criterion), ("optimizer", self.optimizer)):
            if value is None:
                raise ValueError(f"system::{name} is not set; `lighter fit` needs one to train.")

    def on_train_epoch_start(self) -> None:
        # Learning rate and momentum (Adam's beta1), once per epoch, per optimizer and param group, named as
        # upstream Lighter names them: `train/optimizer/SGD/lr`, `train/optimizer/SGD/lr/group1`, ...
        optimizers = self.trainer.optimizers
        for i, optimizer in enumerate(optimizers):
            base = f"{Mode.TRAIN.value}/{OPTIMIZER}/{type(optimizer).__name__}" + (
                f"/{i}" if len(optimizers) > 1 else ""
            )
            groups = optimizer.param_groups
            for j, group in enumerate(groups):
                suffix = f"/group{j + 1}" if len(groups) > 1 else ""
                self.log(f"{base}/lr{suffix}", float(group["lr"]), on_step=False, on_epoch=True)
                momentum = group["momentum"] if "momentum" in group else group["betas"][0] if "betas" in group else None
                if momentum is not None:
                    self.log(f"{base}/momentum{suffix}", float(momentum), on_step=False, on_epoch=True)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A checkpoint from fit may hold a criterion's buffers that a test or predict run does not build.
        state = checkpoint.get("state_dict", {})
        _match_compiled_names(state, self.state_dict().keys())
        for key in [k for k in state if k.split(".", 1)[0] not in self._modules]:
            del state[key]

    # ---- tuning: what Lightning's LearningRateFinder and BatchSizeFinder read and set ----------
    @property
    def lr(self) -> float:
        """The optimizer's learning rate (its first param group's). Setting it scales every group alike."""
        if self.optimizer is None:
            raise AttributeError("lr: system::optimizer is not set")
        return self.optimizer.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        groups = self.optimizer.param_groups
        first = groups[0]["lr"]
        scale = value / first if first else None
        for group in groups:
            group["lr"] = group["lr"] * scale if scale is not None else value
            if "initial_lr" in group:  # what a scheduler restarts from
                group["initial_lr"] = group["lr"]
        scheduler = self.scheduler.get("scheduler") if isinstance(self.scheduler, Mapping) else self.scheduler
        if hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [group["lr"] for group in groups]

    learning_rate = lr  # Lightning's finders look for either name

    @property
    def batch_size(self) -> int:
        """The train dataloader's batch size. Setting it rebuilds that dataloader with the new size."""
        size = getattr(self.dataloaders.get(Mode.TRAIN.value), "batch_size", None)
        if size is None:
            raise AttributeError("batch_size: system::dataloaders::train is not a DataLoader with a batch_size")
        return size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.dataloaders[Mode.TRAIN.value] = with_batch_size(self.dataloaders[Mode.TRAIN.value], value)

    # ---- data ---------------------------------------------------------------------------------
    def _dataloader(self, mode: Mode) -> Any:
        loader = self.dataloaders.get(mode.value)
        if loader is None:
            raise ValueError(
                f"system::dataloaders::{mode.value} is not set, but this stage needs it. "
                f"Add a DataLoader under system::dataloaders::{mode.value}."
            )
        return loader

    def train_dataloader(self) -> Any:
        return self._dataloader(Mode.TRAIN)

    def val_dataloader(self) -> Any:
        # Fit without validation is legitimate: no loader means no validation loop.
        if Mode.VAL.value not in self.dataloaders and self.trainer.state.fn == "fit":
            return []
        return self._dataloader(Mode.VAL)

    def test_dataloader(self) -> Any:
        return self._dataloader(Mode.TEST)

    def predict_dataloader(self) -> Any:
        return self._dataloader(Mode.PREDICT)


COMPILED = "_orig_mod."  # the prefix torch.compile's wrapper adds to every name of the module it wraps


def _match_compiled_names(state: dict[str, Any], own: Iterable[str]) -> None:
    """Rename a checkpoint's keys in place so a compiled model loads an uncompiled one's weights, and the reverse."""
    own = set(own)
    by_plain = {name.replace(COMPILED, ""): name for name in own}
    for key in [k for k in state if k not in own]:
        target = by_plain.get(key.replace(COMPILED, ""))
        if target is not None and target not in state:
            state[target] = state.pop(key)
