"""`MonaiMetric`: a MONAI cumulative metric (DiceMetric, MeanIoU, ...) as a torchmetrics Metric."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class MonaiMetric(Metric):
    """Collects a MONAI metric's per-sample values over an epoch (and across processes), then aggregates them.

    ```yaml
    metrics:
      val:
        dice:
          _target_: lighter.utils.MonaiMetric
          metric: {_target_: monai.metrics.DiceMetric, include_background: true}
    ```

    Give it post-processed predictions (one-hot or thresholded), e.g. with a MetricsAdapter's pred_transforms.
    The epoch value is the MONAI metric's own `aggregate()` over every sample, so its reduction rules (mean
    ignoring NaN for DiceMetric) hold.
    """

    full_state_update = False
    higher_is_better: bool | None = None

    def __init__(self, metric: Any, **kwargs: Any):
        super().__init__(**kwargs)
        for method in ("__call__", "reset", "extend", "aggregate"):
            if not callable(getattr(metric, method, None)):
                raise TypeError(
                    f"MonaiMetric wraps a MONAI Cumulative metric such as monai.metrics.DiceMetric; "
                    f"{type(metric).__name__} has no {method}()."
                )
        self.metric = metric
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def update(self, pred: Any, target: Any) -> None:
        values = self.metric(pred, target)
        self.metric.reset()  # the per-sample values live in this Metric's state, which syncs across processes
        self.values.append(torch.as_tensor(values).detach())

    def compute(self) -> torch.Tensor:
        if not self.values:
            return torch.tensor(float("nan"))
        self.metric.reset()
        self.metric.extend(dim_zero_cat(self.values))
        result = self.metric.aggregate()
        self.metric.reset()
        return result[0] if isinstance(result, (list, tuple)) else result
