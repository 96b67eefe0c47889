"""Lightning's CometLogger, where `online: false` means what its docstring says: log to an offline archive.

Lightning's own (pytorch-lightning 2.6) turns `online: false` into Comet's `disabled` setting: the experiment
exists, but nothing is logged and no archive is written. Here `online: false` starts Comet's OfflineExperiment,
which writes `<offline_directory>/<experiment key>-<suffix>.zip` when the process ends (`comet upload` sends it).

```yaml
trainer:
  logger:
    _target_: lighter.tracking.CometLogger
    online: false
    offline_directory: comet
    project: digits
```
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.loggers import CometLogger as _LightningCometLogger


class CometLogger(_LightningCometLogger):
    def __init__(self, *, online: bool | None = None, **kwargs: Any):
        self._offline = online is False  # set first: the parent starts the experiment inside its __init__
        super().__init__(online=None if self._offline else online, **kwargs)

    def _create_experiment(self) -> None:
        if self._offline:
            self._online = False  # comet_ml.start(online=False) starts an OfflineExperiment
        super()._create_experiment()
