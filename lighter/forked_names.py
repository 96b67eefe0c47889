"""One `self.log` per value, two of upstream Lighter's names: `{name}/step` and `{name}/epoch`.

Lightning keeps a value logged with `on_step=True, on_epoch=True` once and reports it twice, as `{name}_step` and
`{name}_epoch` (`_ResultCollection._forked_name`). Upstream Lighter's names, which users' `monitor:` keys and
trackers follow, use `/` instead; logging each value twice (once per name) got them at twice the cost per step,
with each metric object handed to Lightning twice. A name the System wraps in `ForkedName` gets `/` from
Lightning's own fork; every other name (a user's module, a callback) keeps Lightning's `_`.

Under DDP, `sync_dist=True` now also reduces the per-step copy across processes (Lightning syncs both copies of one
logged value), so `{mode}/loss/step` is the mean over processes rather than one process's own.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultCollection

from lighter.names import EPOCH, STEP


class ForkedName(str):
    """A logged name whose step and epoch copies are `{name}/step` and `{name}/epoch`, not Lightning's `_step`."""

    step: str
    epoch: str

    def __new__(cls, name: str) -> ForkedName:
        self = super().__new__(cls, name)
        self.step, self.epoch = f"{name}/{STEP}", f"{name}/{EPOCH}"  # built once, read every step
        return self


_lightning_forked_name = _ResultCollection._forked_name


def _forked_name(self: _ResultCollection, result_metric: Any, on_step: bool) -> tuple[str, str]:
    meta = result_metric.meta
    name = meta.name
    if type(name) is not ForkedName or not meta.forked:
        return _lightning_forked_name(self, result_metric, on_step)
    forked = name.step if on_step else name.epoch
    if meta.add_dataloader_idx and meta.dataloader_idx is not None:
        forked += self.DATALOADER_SUFFIX.format(meta.dataloader_idx)
    # Lightning also reports the bare name to callbacks; lighter's names never had one, so neither copy adds it.
    return forked, forked


def install() -> None:
    """Make Lightning's fork honour `ForkedName` (idempotent; names of other types are untouched)."""
    _ResultCollection._forked_name = _forked_name  # type: ignore[method-assign]


install()
