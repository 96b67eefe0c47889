"""Names that the config format, the System and the run directory share, defined once.

Nothing here imports torch, so the CLI can use it to answer `--help` at once.
"""

from enum import Enum

TARGET = "_target_"
REQUIRES = "_requires_"
DISABLED = "_disabled_"
MODE = "_mode_"
META = "_meta_"
REF = "@"
EXPR = "$"
MACRO = "%"
SEP = "::"
ALT_SEP = "#"  # accepted everywhere, turned into SEP on reading
DELETE = "~"  # `~key` in a later file (or override) removes the key
REPLACE = "="  # `=key` in a later file replaces the subtree instead of merging into it
APPEND = "+"  # `+key` in a later file (or override) appends to the list there (merges into a dict)
LITERAL_BLOCKS = ("sweep",)  # top-level blocks whose keys are kept as written: `sweep:` axes are `+a::b: [...]`

SYSTEM_TARGETS = ("lighter.System", "lighter.system.System")
# Classes upstream Lighter renamed: an old name in a `_target_` gets a hint naming today's.
RENAMED = {
    "LighterSystem": "lighter.System",
    "LighterFileWriter": "lighter.callbacks.FileWriter",
    "LighterTableWriter": "lighter.callbacks.TableWriter",
    "LighterFreezer": "lighter.callbacks.Freezer",
}
TRAINER_TARGET = "pytorch_lightning.Trainer"
PROJECT_MODULE = "project"  # the `project:` folder is imported under this name


class Stage(str, Enum):
    """A `lighter` command and the `Trainer` method it calls."""

    FIT = "fit"
    VALIDATE = "validate"
    TEST = "test"
    PREDICT = "predict"


class Mode(str, Enum):
    """Which loop a step belongs to; keys `dataloaders`, `metrics` and `adapters`."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    PREDICT = "predict"


# The one table the CLI, the pruning and the System derive from.
# Lightning Tuner methods: `lighter lr_find|scale_batch_size` run them on the fit stage's config, with their
# arguments under `args::<name>` as upstream Lighter 0.0.4 took them.
TUNER_METHODS = ("lr_find", "scale_batch_size")

STAGE_MODES: dict[Stage, tuple[Mode, ...]] = {
    Stage.FIT: (Mode.TRAIN, Mode.VAL),
    Stage.VALIDATE: (Mode.VAL,),
    Stage.TEST: (Mode.TEST,),
    Stage.PREDICT: (Mode.PREDICT,),
}
LOSS_MODES = (Mode.TRAIN, Mode.VAL)  # modes that compute the criterion
METRIC_MODES = (Mode.TRAIN, Mode.VAL, Mode.TEST)
ADAPTER_KINDS = ("batch", "criterion", "metrics", "logging")

# Logged names, as upstream Lighter 0.0.4 logs them, so `monitor:` keys in its users' configs keep working:
# `{mode}/loss/{step|epoch}`, `{mode}/loss/{sub-loss}/{step|epoch}`, `{mode}/metrics/{name}/{step|epoch}`,
# and once per epoch `train/optimizer/{OptimizerClass}/lr` (and `/momentum`).
LOSS = "loss"
METRICS = "metrics"
OPTIMIZER = "optimizer"
STEP = "step"
EPOCH = "epoch"


def loss_name(mode: str, sub: str | None = None) -> str:
    """`val/loss`, or `val/loss/ce` for the criterion's sub-loss `ce`; append `/step` or `/epoch`."""
    return f"{mode}/{LOSS}/{sub}" if sub is not None else f"{mode}/{LOSS}"


def metric_name(mode: str, name: str) -> str:
    """`val/metrics/accuracy`; append `/step` or `/epoch`."""
    return f"{mode}/{METRICS}/{name}"


def per(base: str, when: str) -> str:
    """The logged name of `base` per step or per epoch."""
    return f"{base}/{when}"


TOP_LEVEL_KEYS = ("trainer", "system", "project", "vars", "args", "seed", META, REQUIRES)
SYSTEM_KEYS = ("model", "dataloaders", "optimizer", "scheduler", "criterion", "metrics", "adapters", "inferer")
COMPONENT_KEYS = (TARGET, REQUIRES, DISABLED, MODE, "_desc_")


# The files of a run directory (see lighter.run.files), here at the bottom because callbacks below `run/` write them.
CONFIG_FILE = "config.yaml"  # the runnable config
RUN_FILE = "run.yaml"  # the record: how the run was started and how it ended
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_FOLDER_OWNER = ".lighter-run.yaml"  # in a `ModelCheckpoint(dirpath=...)` folder: the run that writes there
CHECKPOINT_CONFIG_FILE = "checkpoint_config.yaml"  # the config that trained the checkpoint a run loads
METRICS_FILE = "metrics.csv"  # Lightning's CSVLogger's
BATCH_LOG_FILE = "batch_log.csv"  # lighter.callbacks.BatchLog's
TRIAL_FILE = "trial.yaml"  # a sweep trial's record: status, axes, leaf


class Status(str, Enum):
    """How a run or a sweep trial stands: the one vocabulary of `run.yaml`, `trial.yaml`, `lighter sweep status` and
    the dashboard (`lighter.run.status` decides a record's status as it stands now).

    `run.yaml` records running, then finished, failed or interrupted. `trial.yaml` records pending, queued,
    running, then done, pruned or failed, or pending again with `interrupted:` set. Stale, and interrupted for a
    trial, are read from the records and files, not written.
    """

    PENDING = "pending"  # a trial not yet run, or to run again
    QUEUED = "queued"  # a trial submitted to SLURM (`slurm_job` names the array task), not started yet
    RUNNING = "running"
    FINISHED = "finished"  # a run that ended normally
    DONE = "done"  # a trial whose run finished and left its batch log
    PRUNED = "pruned"  # a searched trial its study's pruner stopped early; finished, like done
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped by a signal or killed outright: resumed or restarted by the next run
    STALE = "stale"  # a done trial whose config changed since its run started: rerun only when asked


# A run or trial still on its way: the dashboard counts these as running and refreshes often while there are some.
LIVE_STATUSES = (Status.RUNNING, Status.PENDING)
