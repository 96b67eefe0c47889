"""The warm server's start: import once what every trial forked from it then finds loaded.

Importing these initialises no GPU; `PYTORCH_NVML_BASED_CUDA_CHECK` keeps `torch.cuda.is_available()` from doing
so too (it asks NVML instead), since a process forked after CUDA started could not use it.

The server ignores SIGTERM: a SIGTERM sent to the runner's whole process group then stops the trials (each
restores the default and lets Lightning save and record it) while the server lives on to report how each trial
ended. It still stops with the runner, which closes the pipe it watches.
"""

import os
import signal

os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
signal.signal(signal.SIGTERM, signal.SIG_IGN)

import fire  # noqa: E402, F401  (trials still start through the `lighter` command's parser)
import monai  # noqa: E402, F401
import pytorch_lightning  # noqa: E402, F401
import torch  # noqa: E402, F401
import torchmetrics  # noqa: E402, F401

import lighter.callbacks  # noqa: E402, F401
import lighter.engine.resume  # noqa: E402, F401
import lighter.engine.stage  # noqa: E402, F401
import lighter.sweep.pruning  # noqa: E402, F401  (a searched trial's callback: optuna, 0.3-1 s a trial otherwise)
import lighter.system  # noqa: E402, F401
