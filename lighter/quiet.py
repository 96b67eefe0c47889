"""Quiet by default: the warnings and notices a lighter user cannot act on, hidden in one place.

Each entry says why it is noise. Warnings about the user's own config (a dataloader without workers, a metric
that is never logged, a deprecated argument they wrote) stay. `--verbose` or LIGHTER_VERBOSE=1 shows everything.
"""

from __future__ import annotations

import logging
import os
import warnings

VERBOSE_ENV = "LIGHTER_VERBOSE"

# (message regex, why it is hidden). Matched against the start of the warning's text.
HIDDEN_WARNINGS = (
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        "torch deprecates an API that Lightning itself calls (pytorch_lightning/utilities/_pytree.py); "
        "only a Lightning release can change it",
    ),
    (
        r"The number of training batches \(\d+\) is smaller than the logging interval",
        "Lightning's log_every_n_steps default (50) on a small dataset: the epoch-level values lighter logs "
        "are complete regardless, and the per-step ones still appear every epoch",
    ),
    (
        r"The `srun` command is available on your system but is not used",
        "Lightning's hint on any machine with SLURM installed: on a login node lighter runs in one process by "
        "design, and in a SLURM job srun (submitit's, or the user's own sbatch script) already started it",
    ),
)
# Lines other libraries log that say nothing to a lighter user: (logger names, start of the line, why hidden).
NOTICE_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero")
HIDDEN_LOG_LINES = (
    (
        NOTICE_LOGGERS,
        "💡 Tip:",
        "advertisements for Lightning's cloud services (litlogger, litmodels), printed on every run",
    ),
    (
        ("submitit",),
        "Bypassing signal",
        "submitit's own handler in a SLURM trial: SLURM sends SIGCONT (and SIGTERM) before it stops or requeues a "
        "job, submitit ignores it, and its two log handlers (stdout and stderr) print the line twice into the "
        "trial's output.log; lighter's handler says what the stop does",
    ),
)


class _HideLines(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def hide_noise() -> None:
    """Install the filters for this process, unless the user asked for everything."""
    if verbose():
        return
    for message, _why in HIDDEN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for names, start, _why in HIDDEN_LOG_LINES:
        for name in names:
            logger = logging.getLogger(name)
            if not any(isinstance(f, _HideLines) and f.start == start for f in logger.filters):
                logger.addFilter(_HideLines(start))
