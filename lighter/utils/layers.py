"""`replace_layer`: swap one named submodule of a model, e.g. the classifier head for a new number of classes."""

from __future__ import annotations

from torch import nn

from lighter.errors import did_you_mean


def replace_layer(model: nn.Module, name: str, layer: nn.Module) -> nn.Module:
    """Put `layer` where the submodule `name` (dotted, as `named_modules()` spells it) was; return the model.

    ```yaml
    model:
      _target_: lighter.utils.replace_layer
      model: {_target_: project.models.DigitsCNN, num_classes: 10}
      name: head.4
      layer: {_target_: torch.nn.Linear, in_features: 128, out_features: 5}
    ```
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"replace_layer: `layer` must be a torch.nn.Module, got {type(layer).__name__}.")
    modules = dict(model.named_modules())
    if not name or name not in modules:
        names = [n for n in modules if n]
        hint = did_you_mean(name, names, fallback=f"The model's layers include {', '.join(names[:8])}.")
        raise ValueError(f"replace_layer: the model has no layer named {name!r}. {hint}")
    parent_name, _, child = name.rpartition(".")
    setattr(modules[parent_name], child, layer)  # also right for Sequential/ModuleList indices: they are names
    return model
