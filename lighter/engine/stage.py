"""Run a stage: read and check the config, build what the stage uses, call the Trainer method of that name."""

from __future__ import annotations

import contextlib
import gc
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lighter.config import build
from lighter.config.components import check_has_system, check_seed
from lighter.config.loader import ConfigArgs, Configs, LoadedConfig, load_config, split_config_args
from lighter.config.validate import validate
from lighter.engine import preflight
from lighter.engine.attribution import batch_errors_name_their_key, component_keys, errors_name_their_component
from lighter.engine.monitors import check_logged, check_monitors
from lighter.engine.summary import print_summary
from lighter.errors import ConfigError, did_you_mean
from lighter.names import Stage
from lighter.run.checkpoint_io import read_checkpoint, trusted
from lighter.run.inputs import stage_inputs
from lighter.run.lifecycle import recorded
from lighter.run.slurm import is_restart
from lighter.tracking import hooks as tracking
from lighter.tracking.profiles import chosen
from lighter.tracking.secrets import Secrets

Overrides = list[str] | dict[str, Any] | None
# Lightning resolves these ckpt_path names from the ModelCheckpoint of a `fit` in the same process only.
SAME_PROCESS_CHECKPOINTS = ("best", "last")
TUNER_METHODS = ("lr_find", "scale_batch_size")  # Lightning's Tuner methods that `execute` runs on a fit config


@dataclass
class Experiment:
    """A stage's config as read, the config that runs, and (once instantiated) the built objects."""

    stage: Stage
    loaded: LoadedConfig
    config: dict[str, Any]  # merged, overridden, macros expanded, `project` absolute: runnable from anywhere
    pruned: dict[str, Any]  # what this stage builds
    command: str = ""
    secrets: Secrets = field(default_factory=Secrets)  # what lighter never records (lighter.tracking.secrets)
    trainer: Any = None
    system: Any = None
    recorder: Any = None  # the RunRecorder, which alone holds the run's directory; None when nothing is recorded
    tuner: str | None = None  # a Tuner method (TUNER_METHODS) that runs instead of the stage's Trainer method
    args: dict[str, Any] | None = None
    components: dict[int, str] = field(default_factory=dict)  # id(built object) -> its key

    @property
    def source_dir(self) -> Path:
        project = self.config.get("project")
        return Path(project) if project else self.loaded.files[0].parent


def override_words(overrides: Overrides) -> list[str]:
    """Overrides as typed on a command line: `key::path=value` words."""
    if isinstance(overrides, dict):
        return [f"{k}={v}" for k, v in overrides.items()]
    return list(overrides or [])


def command_line(
    name: str,
    args: Sequence[str],
    overrides: Overrides = None,
    *,
    profile: str | None = None,
    run_dir: str | Path | None = None,
) -> str:
    """The command run.yaml records: `lighter NAME ARGS... OVERRIDES... [--profile P] [--run-dir D]`.

    Built once, by the entry point that was called (it alone knows what was typed: `lighter test RUN_DIR`, not the
    config file it stands for), and handed to `prepare`. `profile` is the profile in use, already chosen.
    """
    words = ["lighter", name, *args, *override_words(overrides)]
    if profile is not None:
        words += ["--profile", profile]
    if run_dir is not None:
        words += ["--run-dir", str(run_dir)]
    return shlex.join(words)


def parse_stage(stage: Stage | str) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        names = [s.value for s in Stage]
        raise ConfigError(f"unknown stage '{stage}'", suggestion=did_you_mean(str(stage), names)) from None


def prepare(
    stage: Stage | str,
    configs: Configs,
    overrides: Overrides = None,
    *,
    imports: bool = True,
    profile: str | None = None,
    command: str | None = None,
):
    """Read, merge, override, expand and check a config for `stage`; import its project unless `imports` is off.

    `profile` (else `LIGHTER_PROFILE`) names a profile merged between the config files and the overrides. `command`
    is what run.yaml records (`command_line`); by default `lighter STAGE CONFIGS... OVERRIDES... [--profile P]`.
    """
    stage, configs = parse_stage(stage), split_config_args(configs)
    if command is None:
        command = command_line(stage.value, configs.typed, overrides, profile=chosen(profile))
    loaded = load_config(configs, overrides, profile_file=tracking.profile_file(profile))
    config = build.expand_macros(build.with_defaults(loaded.data), loaded)
    if config.get("project") is not None:
        config["project"] = str(build.find_project(loaded, config["project"]))
        if imports:
            build.import_project(Path(config["project"]))
    pruned = build.prune(config, stage)
    experiment = Experiment(stage, loaded, config, pruned, command=command)
    experiment.secrets = tracking.find(config, loaded)
    validate(config, pruned, loaded, stage, imports=imports)
    if imports:
        tracking.check(pruned, loaded)
    return experiment


def instantiate(
    experiment: Experiment, *, record: bool = True, checkpoint: bool = True, tuner: str | None = None
) -> Experiment:
    """Seed, then build the trainer, the system and the arguments of the stage's Trainer method.

    `checkpoint` off (`lighter check`, which never loads it) skips checking that `ckpt_path` exists. `tuner` (one
    of TUNER_METHODS, on a fit) takes that Tuner method's arguments from `args::<tuner>` instead, with the same
    parser, and records the run as that method's."""
    import pytorch_lightning as pl  # lazy: `lighter show` (prepare alone) never imports Lightning

    from lighter.callbacks.progress import use_default_progress  # lazy: imports Lightning
    from lighter.run.recorder import RunRecorder  # lazy: imports Lightning

    if tuner is not None and tuner not in TUNER_METHODS:
        raise ValueError(f"unknown Tuner method {tuner!r}; lighter runs {', '.join(TUNER_METHODS)}")
    stage, pruned = experiment.stage, experiment.pruned
    check_has_system(pruned, experiment.loaded, stage)
    parser = build.make_parser(build.transforms_as_functions(pruned), experiment.loaded)
    seed = parser.get_parsed_content("seed") if pruned.get("seed") is not None else None
    if seed is not None:
        check_seed(seed, experiment.loaded)  # an @reference or $expression is only known now
        pl.seed_everything(seed, workers=True)
    tracking.scrub_argv(experiment.secrets)  # before the loggers start: some record the command line
    experiment.trainer = parser.get_parsed_content("trainer")
    configured = (
        parser.get_parsed_content("trainer::callbacks") if build.key_exists(pruned, "trainer::callbacks") else []
    )
    use_default_progress(experiment.trainer, configured if isinstance(configured, list) else [configured])
    experiment.system = parser.get_parsed_content("system")
    experiment.components = component_keys(parser)
    preflight.check_loggers(experiment.trainer, experiment.loaded)
    if stage is Stage.PREDICT:
        preflight.check_writers(experiment.trainer, experiment.components, experiment.loaded)
    check_monitors(experiment.pruned, experiment.system, stage, experiment.loaded, experiment.trainer.callbacks)
    args_key = f"args::{stage.value}"
    args = parser.get_parsed_content(args_key) if build.key_exists(pruned, args_key) else {}
    experiment.args = dict(args or {})
    if stage is Stage.PREDICT:
        # Writers save predictions as they come; keeping them all in memory too would grow without bound.
        experiment.args.setdefault("return_predictions", False)
    ckpt = experiment.args.get("ckpt_path")
    if stage is not Stage.FIT and ckpt in SAME_PROCESS_CHECKPOINTS:
        key = f"{args_key}::ckpt_path"
        raise ConfigError(
            f"ckpt_path '{ckpt}' means the {ckpt} checkpoint of a fit that ran in this same process, and "
            f"`lighter {stage.value}` starts a new one",
            key=key,
            location=experiment.loaded.where(key),
            suggestion=f"Name a fit's run directory: `lighter {stage.value} RUN_DIR` (its best checkpoint, else its "
            f"last), or a file: {key}=RUN_DIR/checkpoints/last.ckpt",
        )
    if ckpt is not None and checkpoint:  # `lighter check` never loads it
        _check_checkpoint(experiment, f"{args_key}::ckpt_path", ckpt)
    if tuner is not None:
        experiment.tuner = tuner
        tuner_key = f"args::{tuner}"
        args = parser.get_parsed_content(tuner_key) if build.key_exists(pruned, tuner_key) else {}
        experiment.args = dict(args or {})  # the Tuner method's arguments, not fit's
    if record:
        secrets = experiment.secrets
        recorder = RunRecorder(
            secrets.mask(experiment.config),
            tuner or stage.value,  # run.yaml says what ran; runs/<tuner>/ without a logger
            secrets.scrub(experiment.command),
            seed,
            experiment.source_dir,
            ckpt_path=ckpt,
        )
        experiment.recorder = recorder
        experiment.trainer.callbacks.append(recorder)
        experiment.trainer.callbacks.append(tracking.handoff(secrets, experiment.config, recorder))
    return experiment


def _check_checkpoint(experiment: Experiment, key: str, ckpt: Any) -> None:
    """A `ckpt_path` that names a file must be a whole, safe Lightning checkpoint; `best` and `last` mean nothing to
    a new run (lighter gives each run its own directory), so they point at the commands that do what they meant."""
    location = experiment.loaded.where(key)
    if ckpt in ("best", "last"):
        raise ConfigError(
            f"'{ckpt}' names a checkpoint of this run, and a new run has none yet",
            key=key,
            location=location,
            suggestion="Continue a fit with `lighter resume RUN_DIR`; test or predict with a run's best checkpoint "
            "with `lighter test RUN_DIR`; or give the path of a .ckpt file.",
        )
    if ckpt == "hpc" and not is_restart():
        raise ConfigError(
            "'hpc' names the checkpoint Lightning saves when SLURM requeues this job, and this is no requeued job, "
            "so there is none",
            key=key,
            location=location,
            suggestion="Leave ckpt_path unset: a requeued job finds its run and resumes by itself. Continue a stopped "
            "fit with `lighter resume RUN_DIR`, or give the path of a .ckpt file.",
        )
    if not isinstance(ckpt, str) or ckpt in ("hpc", "registry") or ckpt.startswith("registry:"):
        return
    if not Path(ckpt).is_file() and not Path(ckpt).is_dir():
        raise ConfigError(
            f"checkpoint '{ckpt}' does not exist",
            key=key,
            location=location,
            suggestion="Run `lighter fit` first, or point ckpt_path at an existing .ckpt file.",
        )
    try:
        read_checkpoint(ckpt, key=key)
    except ConfigError as err:
        err.location = location
        raise ConfigError(err.message, key=key, location=location, suggestion=err.suggestion) from err.__cause__
    experiment.args.setdefault("weights_only", not trusted())


def _errors_name_their_component(experiment: Experiment) -> contextlib.AbstractContextManager[None]:
    return errors_name_their_component(
        experiment.components, experiment.loaded, trainer=experiment.trainer, system=experiment.system
    )


@contextlib.contextmanager
def _startup_objects_frozen() -> Iterator[None]:
    """Keep the garbage collector off what exists before the loop starts: modules, classes, the built objects.

    They live as long as the run, but each full collection walks them all. MONAI's import alone adds 430 modules'
    worth, which made every epoch of the digits MLP 5% slower than the hand-written module's (benchmarks/README.md).
    Unfrozen afterwards, so a caller that runs several stages in one process loses nothing to the collector.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def call_stage(
    stage: Stage | str,
    configs: Configs,
    overrides: Overrides = None,
    *,
    run_dir: str | Path | None = None,
    profile: str | None = None,
) -> Any:
    """`lighter <stage> CONFIG... [overrides] [--run-dir DIR]` as a function: returns what the Trainer method returns.

    The run's directory is `run_dir` when given, else lighter's choice (see `lighter.run.directory`).
    """
    stage, configs = parse_stage(stage), split_config_args(configs)
    # As typed (`lighter test RUN_DIR`), before RUN_DIR becomes its recorded config and checkpoint below.
    command = command_line(stage.value, configs.typed, overrides, profile=chosen(profile), run_dir=run_dir)
    source_run = _run_dir_input(configs)
    if source_run is not None:
        # `lighter test RUN_DIR`: the run's recorded config and its best checkpoint (else its last).
        _, config_file, ckpt = stage_inputs(stage.value, source_run)
        configs = ConfigArgs(
            tuple(str(config_file) if c == source_run else c for c in configs.typed),
            (str(config_file),),
            configs.overrides,
        )
        key = f"args::{stage.value}::ckpt_path"
        if isinstance(overrides, dict):
            overrides = {key: str(ckpt), **overrides}  # the user's own ckpt_path, if given, still wins
        else:
            overrides = [f"{key}={ckpt}", *(overrides or [])]
    prepared = prepare(stage, configs, overrides, profile=profile, command=command)
    return execute(instantiate(prepared), run_dir=run_dir)


def add_callbacks(experiment: Experiment, callbacks: list[Any]) -> None:
    """Give the built trainer more callback objects, each unless the config built one of its class already. They go
    before the checkpoint callbacks, which Lightning runs last so that a checkpoint holds what the others did."""
    from pytorch_lightning.callbacks import Checkpoint  # lazy: Lightning, not for show/status

    present = experiment.trainer.callbacks
    added = [cb for cb in callbacks if not any(isinstance(have, type(cb)) for have in present)]
    at = next((i for i, cb in enumerate(present) if isinstance(cb, Checkpoint)), len(present))
    present[at:at] = added


def _run_dir_input(configs: ConfigArgs) -> str | None:
    """The run directory given in place of config files (`lighter test RUN_DIR`), if that is what was given."""
    files = configs.files
    return files[0] if len(files) == 1 and Path(files[0]).is_dir() else None


def execute(experiment: Experiment, *, run_dir: str | Path | None = None, continuing: bool = False) -> Any:
    """Call the stage's Trainer method inside its recorded run directory (see `lighter.run.lifecycle`), or the
    experiment's `tuner` method of Lightning's Tuner (`lr_find`, `scale_batch_size`), with the same record, error
    attribution and summary."""
    from pytorch_lightning.tuner import Tuner  # lazy: Lightning, not for show/status

    tuner = experiment.tuner
    if tuner is None:
        method = getattr(experiment.trainer, experiment.stage.value)
    else:
        method = getattr(Tuner(experiment.trainer), tuner)
    outcome = None
    try:
        with (
            recorded(experiment, run_dir, continuing=continuing) as outcome,
            _errors_name_their_component(experiment),
            batch_errors_name_their_key(experiment.loaded),
            _startup_objects_frozen(),
        ):
            result = method(experiment.system, **experiment.args)
    finally:
        # Finished or interrupted: where it went, what next; failed: nothing.
        print_summary(experiment, outcome, tuned=tuner is not None)
    _close_process_group()
    return result


def _close_process_group() -> None:
    """End a finished multi-process run together. Lightning leaves a gloo process group open at exit, and its
    threads, still running while the interpreter shuts down, sometimes abort the process that hosts the rendezvous
    store ("terminate called without an active exception", exit -6) after a run that succeeded."""
    import torch.distributed as dist  # lazy: only a multi-process run has a group to close

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check(
    stage: Stage | str, configs: Configs, overrides: Overrides = None, *, profile: str | None = None
) -> Experiment:
    """Build everything `stage` builds and push one batch per loop through it, writing nothing.

    The stage's own Trainer is built (so its callbacks and logger are checked) but a throwaway
    `fast_dev_run` Trainer, without logger, checkpoints or callbacks, runs the batch.
    """
    import pytorch_lightning as pl  # lazy: `lighter show` never imports Lightning

    experiment = instantiate(prepare(stage, configs, overrides, profile=profile), record=False, checkpoint=False)
    dry = pl.Trainer(
        fast_dev_run=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator=experiment.trainer.accelerator,
        devices=1,
    )
    args = {k: v for k, v in experiment.args.items() if k not in ("ckpt_path",)}
    with _errors_name_their_component(experiment), batch_errors_name_their_key(experiment.loaded):
        getattr(dry, experiment.stage.value)(experiment.system, **args)
    if experiment.stage is Stage.FIT:
        check_logged(experiment.pruned, dry.callback_metrics, experiment.loaded, experiment.trainer.callbacks)
    return experiment
