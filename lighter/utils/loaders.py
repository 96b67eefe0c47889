"""Rebuild a DataLoader with another batch size, as Lightning's batch-size finder asks of the System."""

from __future__ import annotations

from lightning_fabric.utilities.data import _reinstantiate_wrapped_cls
from pytorch_lightning.utilities.data import _get_dataloader_init_args_and_kwargs
from torch.utils.data import DataLoader


def with_batch_size(loader: DataLoader, batch_size: int) -> DataLoader:
    """The same loader (its class, dataset, sampler, workers, collate_fn) with `batch_size`.

    Lightning rebuilds loaders this way to insert a DistributedSampler; a loader built from the config has no other
    record of its arguments.
    """
    args, kwargs = _get_dataloader_init_args_and_kwargs(loader, loader.sampler)
    kwargs["batch_size"] = batch_size
    return _reinstantiate_wrapped_cls(loader, *args, **kwargs)
