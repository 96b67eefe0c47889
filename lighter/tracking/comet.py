"""Lightning's CometLogger, where `online: false` means what its docstring says: log to an offline archive.

Lightning's own (pytorch-lightning 2.6) turns `online: false` into Comet's `disabled` setting: the experiment
exists, but nothing is logged and no archive is written. Here `online: false` starts Comet's OfflineExperiment,
which writes `<offline_directory>/<experiment key>-<suffix>.zip` when the process ends (`comet upload` sends it).
The archive never holds the `workspace` (often a profile's, which lighter never records): give it at upload,
`comet upload --workspace NAME archive.zip`, or in Comet's own config.

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
    def __init__(self, *, online: bool | None = None, workspace: str | None = None, **kwargs: Any):
        self._offline = online is False  # set first: the parent starts the experiment inside its __init__
        workspace = None if self._offline else workspace  # an upload names it; the archive would keep it at rest
        super().__init__(online=None if self._offline else online, workspace=workspace, **kwargs)

    def _create_experiment(self) -> None:
        if self._offline:
            self._online = False  # comet_ml.start(online=False) starts an OfflineExperiment
        super()._create_experiment()
