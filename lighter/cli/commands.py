"""The `lighter` commands as one table: each command's function, options, help text and examples.

Adding a command is one entry in `COMMAND_LIST` and one function in `actions.py` (or `sweep_actions.py`):

    Command("report", actions.report, "Write a report of a config.", usage="CONFIG... [KEY::PATH=VALUE ...]",
            about="...", options=(Option("--out", "FILE", "where the report goes"),),
            examples=(("lighter report config.yaml --out r.md", "write r.md"),))

A command with sub-commands is several entries named with a space ("sweep run", "sweep status"): `lighter sweep`
lists them. An option without a metavar is a flag that takes no value (`--trust`). `dispatch.py` reads options
from this table and hands the function every other argument as the exact string typed; `help.py` renders it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lighter.cli import actions, sweep_actions
from lighter.names import SYSTEM_KEYS, Stage
from lighter.quiet import VERBOSE_ENV

HELP_FLAGS = ("--help", "-h")
VERSION_FLAGS = ("--version", "-V")
DEBUG_FLAG = "--debug"
VERBOSE_FLAG = "--verbose"
DEBUG_ENV = "LIGHTER_DEBUG"


@dataclass(frozen=True)
class Option:
    """A named option. Without a metavar it is a flag: present means True, and it takes no value."""

    name: str  # "--stage"
    metavar: str | None
    help: str
    short: str | None = None  # "-s"

    @property
    def keyword(self) -> str:
        return self.name.lstrip("-").replace("-", "_")

    def usage(self) -> str:
        names = f"{self.short}, {self.name}" if self.short else self.name
        return f"{names} {self.metavar}" if self.metavar else names


@dataclass(frozen=True)
class Command:
    """One `lighter` command: what fire calls and the help text `lighter NAME --help` prints."""

    name: str  # "fit", or "sweep run" for a sub-command
    run: Callable[..., None]
    summary: str  # one line, for `lighter --help`
    usage: str = "CONFIG... [KEY::PATH=VALUE ...]"  # after `lighter NAME`
    about: str = ""  # what it does, a few lines
    options: tuple[Option, ...] = ()
    examples: tuple[tuple[str, str], ...] = ()  # (command line, what it does)
    takes_config: bool = True  # explains CONFIG and overrides in its help, accepts --config
    extra: dict[str, str] = field(default_factory=dict)  # more help sections, title -> text


GLOBAL_OPTIONS = (
    Option(DEBUG_FLAG, None, f"show the full traceback of an error (or {DEBUG_ENV}=1)"),
    Option(VERBOSE_FLAG, None, f"show every warning, also those lighter hides as noise (or {VERBOSE_ENV}=1)"),
    Option("--help", None, "show this help and exit", short="-h"),
)
CONFIG_OPTION = Option("--config", "FILE", "a config file, as Lighter's CLI takes it (the same as a positional CONFIG)")
RUN_DIR_OPTION = Option(
    "--run-dir", "DIR", "the run's directory (refused if it already holds a run); by default lighter picks a new one"
)
PROFILE_OPTION = Option(
    "--profile",
    "NAME",
    "merge your profile ~/.config/lighter/profiles/NAME.yaml after the configs, before the overrides "
    "(or LIGHTER_PROFILE=NAME); what it sets is never recorded",
)

CONFIG_HELP = (
    "CONFIG is a YAML file; several merge in order (a.yaml b.yaml, or a.yaml,b.yaml): mappings merge key by key,\n"
    "a later list or value replaces the earlier one. KEY::PATH=VALUE (or --KEY::PATH=VALUE) then sets one key of\n"
    "the merged config. VALUE is YAML: 0.01, [16, 32], {_target_: torch.optim.SGD, lr: 0.1}, null.\n"
    "~KEY::PATH deletes a key, ~KEY::PATH=[0, 2] only those items; +KEY::PATH=VALUE appends to a list."
)
KEYS_HELP = (
    "trainer::*  the arguments of pytorch_lightning.Trainer (trainer::max_epochs=5, trainer::devices=2)\n"
    f"system::*   the experiment: {', '.join(SYSTEM_KEYS)}\n"
    "args::*     the arguments of the Trainer method of a stage (args::test::ckpt_path=best.ckpt)\n"
    "vars::*     your own values, referenced as @vars::name"
)
SHOW_HINT = "See the config as it would run, overrides applied: lighter show CONFIG [KEY::PATH=VALUE ...]"

STAGE_HELP = {
    Stage.FIT: "Train the system, validating as the trainer is configured to.",
    Stage.VALIDATE: "Run one pass over the `val` dataloader and report loss and metrics.",
    Stage.TEST: "Run one pass over the `test` dataloader and report metrics.",
    Stage.PREDICT: "Run the model over the `predict` dataloader; writer callbacks save the outputs.",
}

STAGE_EXAMPLES: dict[Stage, tuple[tuple[str, str], ...]] = {
    Stage.FIT: (
        ("lighter fit config.yaml trainer::max_epochs=20 system::optimizer::lr=0.01", "override two keys"),
        ("lighter fit config.yaml experiments/mlp.yaml", "merge a second config on top of the first"),
        ("lighter fit config.yaml 'system::optimizer::betas=[0.9, 0.99]'", "a list value: quote it for the shell"),
        ("lighter fit config.yaml trainer::accelerator=gpu trainer::devices=2", "two GPUs (Lightning starts them)"),
    ),
    Stage.VALIDATE: (
        ("lighter validate config.yaml args::validate::ckpt_path=runs/best.ckpt", "validate a checkpoint"),
        ("lighter validate config.yaml experiments/noisy.yaml", "merge a second config on top of the first"),
        ("lighter validate config.yaml 'trainer::devices=[1]'", "a list value: quote it for the shell"),
    ),
    Stage.TEST: (
        ("lighter test runs/digits/version_0", "test a run's best checkpoint (else its last) with its recorded config"),
        ("lighter test config.yaml args::test::ckpt_path=runs/best.ckpt", "test a checkpoint"),
        ("lighter test config.yaml experiments/noisy.yaml", "merge a second config on top of the first"),
        ("lighter test config.yaml 'trainer::devices=[1]'", "a list value: quote it for the shell"),
    ),
    Stage.PREDICT: (
        ("lighter predict runs/digits/version_0", "predict with a run's best checkpoint and its recorded config"),
        ("lighter predict config.yaml args::predict::ckpt_path=runs/best.ckpt", "predict with a checkpoint"),
        ("lighter predict config.yaml experiments/writers.yaml", "merge a second config on top of the first"),
        (
            "lighter predict config.yaml 'trainer::callbacks=[{_target_: lighter.callbacks.TableWriter, path: p.csv}]'",
            "a list value: write the predictions to p.csv",
        ),
    ),
}

COMMAND_LIST: list[Command] = [
    *(
        Command(
            stage.value,
            actions.stage_command(stage, STAGE_HELP[stage]),
            STAGE_HELP[stage],
            about=STAGE_HELP[stage],
            options=(CONFIG_OPTION, RUN_DIR_OPTION, PROFILE_OPTION),
            examples=STAGE_EXAMPLES[stage],
        )
        for stage in Stage
    ),
    Command(
        "resume",
        actions.resume,
        "Continue a recorded fit from its newest checkpoint, in the same run directory.",
        usage="RUN_DIR [KEY::PATH=VALUE ...]",
        about=(
            "Continue the fit recorded in RUN_DIR from its newest checkpoint (the one SIGINT or SIGTERM saved, or the "
            "last periodic one), with its recorded config plus the overrides, in the same directory: metrics.csv "
            "continues where it stopped, and run.yaml records each resume. A run that has already reached its end "
            "says so and exits 0."
        ),
        examples=(
            ("lighter resume runs/digits/version_0", "continue an interrupted fit"),
            ("lighter resume runs/digits/version_0 trainer::max_epochs=20", "train a finished run for longer"),
            ("lighter resume runs/digits/version_0 --profile me", "the profile that ran it holds its secrets"),
        ),
        options=(PROFILE_OPTION,),
        takes_config=False,
    ),
    Command(
        "show",
        actions.show,
        "Print the merged config after overrides, as YAML: exactly what would run.",
        usage="CONFIG... [KEY::PATH=VALUE ...] [--trust]",
        about="Print the merged config after overrides, as YAML: exactly what would run. Imports no project code.",
        options=(
            Option(
                "--trust",
                None,
                "first list every module a _target_ imports and every $ expression the config evaluates",
                short="-t",
            ),
            CONFIG_OPTION,
            PROFILE_OPTION,
        ),
        examples=(
            ("lighter show config.yaml system::optimizer::lr=0.01", "the config with an override applied"),
            ("lighter show config.yaml experiments/mlp.yaml", "two configs merged"),
            ("lighter show config.yaml --trust", "what running it would import and evaluate"),
            ("lighter show config.yaml 'trainer::devices=[0, 1]' | less", "a list value: quote it for the shell"),
        ),
    ),
    Command(
        "check",
        actions.check,
        "Build what a stage builds and run one batch per loop through it, writing nothing.",
        usage="CONFIG... [KEY::PATH=VALUE ...] [--stage STAGE]",
        about=(
            "Build the stage's trainer and system, then run one batch per loop through adapters, model, criterion "
            "and metrics with a throwaway fast_dev_run Trainer: no training, no logs, checkpoints or predictions."
        ),
        options=(
            Option("--stage", "STAGE", f"the stage to check: {', '.join(s.value for s in Stage)} (default: fit)", "-s"),
            CONFIG_OPTION,
            PROFILE_OPTION,
        ),
        examples=(
            ("lighter check config.yaml", "does `lighter fit config.yaml` build and run?"),
            ("lighter check config.yaml -s predict", "the same for predict"),
            ("lighter check config.yaml experiments/mlp.yaml", "two configs merged"),
            ("lighter check config.yaml 'system::model::channels=[8, 16]'", "a list value: quote it for the shell"),
        ),
    ),
]
COMMAND_LIST += [
    Command(
        "lr_find",
        actions.lr_find,
        "Find a learning rate with Lightning's range test; print it and the override that uses it.",
        about=(
            "Build what `lighter fit` builds, then run Lightning's learning-rate range test (Tuner.lr_find): about "
            "100 training steps with the learning rate rising from 1e-8 to 1. Prints the suggested learning rate and "
            "the override that uses it, and saves the loss-vs-lr plot as lr_find.png in the run directory. The "
            "config file is not changed. Tuner.lr_find's arguments go under args::lr_find (min_lr, max_lr, "
            "num_training, mode, early_stop_threshold)."
        ),
        options=(CONFIG_OPTION, RUN_DIR_OPTION, PROFILE_OPTION),
        examples=(
            ("lighter lr_find config.yaml", "suggest a learning rate for system::optimizer"),
            ("lighter lr_find config.yaml args::lr_find::num_training=200", "a longer range test"),
            ("lighter lr_find config.yaml experiments/mlp.yaml", "merge a second config on top of the first"),
            ("lighter lr_find config.yaml 'system::optimizer::betas=[0.9, 0.99]'", "a list value: quote it"),
        ),
    ),
    Command(
        "scale_batch_size",
        actions.scale_batch_size,
        "Find the largest train batch size that fits in memory with Lightning's batch-size finder.",
        about=(
            "Build what `lighter fit` builds, then run Lightning's batch-size finder (Tuner.scale_batch_size) on "
            "system::dataloaders::train: the batch size doubles until memory runs out or the whole training set "
            "fits in one batch, a few steps per try. Prints the largest batch size that fit and the override that "
            "uses it. The config file is not changed. Tuner.scale_batch_size's arguments go under "
            "args::scale_batch_size (mode: power|binsearch, steps_per_trial, init_val, max_trials)."
        ),
        options=(CONFIG_OPTION, RUN_DIR_OPTION, PROFILE_OPTION),
        examples=(
            ("lighter scale_batch_size config.yaml trainer::accelerator=gpu", "on the GPU you will train on"),
            ("lighter scale_batch_size config.yaml args::scale_batch_size::mode=binsearch", "refine by bisection"),
            ("lighter scale_batch_size config.yaml experiments/mlp.yaml", "merge a second config on top"),
            ("lighter scale_batch_size config.yaml 'trainer::devices=[0]'", "a list value: quote it for the shell"),
        ),
    ),
]
COMMAND_LIST.append(
    Command(
        "dashboard",
        actions.dashboard,
        "Serve interactive plots of every run under a folder: sweeps grouped by axis, seeds as bands.",
        usage="OUT [--port PORT] [--host HOST] [--allow-host NAME,...]",
        about=(
            "Serve a page of training curves for every run under OUT: sweep trials, lighter runs with a batch log, "
            "and any Lightning CSVLogger metrics.csv. Per-epoch logs are made from batch logs on first view and "
            "cached as epoch_log.csv beside them. Settings are compared against seed noise (n, mean ± std, 95% "
            "interval, Welch test) and drawn as parallel coordinates per leaf. JSON for scripts: GET /api/runs, "
            "/api/epochs?run=ID and /api/compare?mode=val&metric=NAME&by=AXIS&best=max."
        ),
        options=(
            Option("--port", "PORT", "the port to listen on (default: 8050; 0 picks a free one)", "-p"),
            Option("--host", "HOST", "the address to listen on (default: 127.0.0.1, this machine only)"),
            Option(
                "--allow-host",
                "NAME,...",
                "more names the page may be opened by (besides localhost and HOST); requests naming any other "
                "host are refused",
            ),
        ),
        examples=(
            ("lighter dashboard runs/sweeps", "serve on http://127.0.0.1:8050/"),
            ("lighter dashboard runs --port 0", "any free port; the URL is printed"),
            ("lighter dashboard runs --host 0.0.0.0", "reachable from other machines (it warns)"),
        ),
        takes_config=False,
        extra={"on a cluster": "ssh -L 8050:localhost:8050 NODE  (on your laptop), then open http://127.0.0.1:8050/"},
    )
)
SWEEP_OUT_OPTION = Option("--out", "OUT", "where trials go (default: runs/sweeps below the current directory)", "-o")
SWEEP_FILTER_OPTIONS = (
    Option("--modes", "M,...", "only leaves of these modes: sweep, experiment"),
    Option("--datasets", "D,...", "only leaves of these datasets (the folder below the mode folder)"),
    Option("--select", "GLOB", "only leaves whose path below ROOT matches GLOB, e.g. 'sweep/digits/*'"),
    Option("--mode", "MODE", "the mode of a root without mode folders, e.g. one config file (default: sweep)"),
)
SWEEP_LAYOUT_HELP = (
    "ROOT/<mode>/<dataset>/<model>/<trainer>/cfg.yaml: each leaf merges every cfg.yaml from ROOT down to it.\n"
    "`sweep:` maps key paths to lists of values (one axis each); `seed: [0, 1, 2]` is the seed axis.\n"
    "Trials go to OUT/<leaf>/trial_###/ (config.yaml, trial.yaml), their run's files beside them."
)


COMMAND_LIST += [
    Command(
        "sweep expand",
        sweep_actions.expand,
        "Write the trials of a config cascade (or one config file) and list them; runs nothing.",
        usage="ROOT [--out OUT] [--modes M,...] [--datasets D,...] [--select GLOB] [--mode MODE]",
        about="Expand the cascade at ROOT into trial folders and print each trial's axis values and status. "
        "Idempotent: configs are regenerated, numbers kept, removed trials kept and marked.",
        options=(SWEEP_OUT_OPTION, *SWEEP_FILTER_OPTIONS),
        examples=(
            ("lighter sweep expand configs/cascade", "every leaf, trials under runs/sweeps/"),
            ("lighter sweep expand configs/cascade --modes experiment", "only the experiment leaves"),
            ("lighter sweep expand my.yaml --mode experiment -o runs/seeds", "one file as the root, over seeds"),
        ),
        takes_config=False,
        extra={"layout": SWEEP_LAYOUT_HELP},
    ),
    Command(
        "sweep status",
        sweep_actions.status,
        "List every trial under OUT with its axis values and status.",
        usage="[OUT] [--format table|json]",
        about="Every trial under OUT (default runs/sweeps): pending, running, done, failed, stale "
        "(done, but its config changed since) or interrupted (stopped, or its process is gone: `sweep run` continues "
        "it).",
        options=(Option("--format", "FORMAT", "table (default) or json", "-f"),),
        examples=(
            ("lighter sweep status", "the trials under runs/sweeps"),
            ("lighter sweep status runs/lr-sweep", "the trials of another --out folder"),
            ("lighter sweep status runs/sweeps --format json", "the trial records as JSON, for scripts"),
        ),
        takes_config=False,
    ),
    Command(
        "sweep results",
        sweep_actions.results,
        "Final and best validation metrics per trial; mean ± std over seeds per experiment leaf.",
        usage="[OUT] [--csv FILE] [--format table|json]",
        about="Per trial under OUT (default runs/sweeps): the final and best value of each validation metric "
        "(from its metrics.csv, else its batch_log.csv) and its test metrics. Per experiment leaf: mean ± sample "
        "std over its done trials, with n. Per searched leaf: complete, pruned and failed trials, the best trial and "
        "its values, and Optuna's parameter importances once 4 trials are complete.",
        options=(
            Option("--csv", "FILE", "also write the per-trial table to FILE (and FILE_summary.csv)"),
            Option("--format", "FORMAT", "table (default) or json: trials and searches, for scripts", "-f"),
        ),
        examples=(
            ("lighter sweep results", "the results of the trials under runs/sweeps"),
            ("lighter sweep results runs/lr-sweep", "those of another --out folder"),
            ("lighter sweep results runs/sweeps --csv results.csv", "also save them (and results_summary.csv)"),
        ),
        takes_config=False,
    ),
    Command(
        "sweep run",
        sweep_actions.run,
        "Expand, then run every trial that is not complete: here, N at a time, or on SLURM as a job array.",
        usage="ROOT [--out OUT] [--jobs N] [--executor local|slurm] [--fail-fast] [filters]",
        about="Expand the cascade at ROOT, then run each trial that is not complete (its run finished and wrote "
        "batch_log.csv) as `lighter fit <trial>/config.yaml --run-dir <trial>` with lighter.callbacks.BatchLog "
        "added. A trial a kill interrupted resumes from its last checkpoint (`lighter resume <trial>`), or starts "
        "again with its earlier files moved to <trial>/attempts/. Each trial's output goes to <trial>/output.log. "
        "One line per trial start and end; a failure is reported when it happens; a table closes the run. "
        "Exit 0 when every trial is done, 1 when one failed, 130/143 when stopped by Ctrl-C/SIGTERM: run the same "
        "command again to continue. Two runners on one OUT share the trials; each trial runs once.",
        options=(
            SWEEP_OUT_OPTION,
            Option(
                "--jobs",
                "N",
                "trials at once on this machine (default 1); with GPUs, each gets its own; with "
                "--executor slurm, the SLURM workers of a searched leaf",
                "-j",
            ),
            Option("--executor", "NAME", "local (default) or slurm: one job array through submitit"),
            Option("--fail-fast", None, "stop at the first failed trial (the running ones are stopped, resumable)"),
            Option("--rerun-stale", None, "also rerun done trials whose config changed since they ran"),
            Option("--gpus-per-trial", "N", "GPUs each local trial gets (default 1), via CUDA_VISIBLE_DEVICES"),
            Option("--cold", None, "start each local trial in a fresh interpreter instead of a warm fork"),
            *SWEEP_FILTER_OPTIONS,
            Option("--partition", "NAME", "slurm: the partition (or launcher: {partition: ...} in ROOT's config)"),
            Option("--time", "LIMIT", "slurm: time limit per trial, minutes or HH:MM:SS"),
            Option("--gpus", "N", "slurm: GPUs per trial"),
            Option("--cpus", "N", "slurm: CPUs per trial"),
            Option("--mem-gb", "N", "slurm: memory per trial, in GB"),
            Option(
                "--cancel-on-stop", None, "slurm: Ctrl-C/SIGTERM cancels the submitted tasks (default: they run on)"
            ),
        ),
        examples=(
            ("lighter sweep run configs/cascade --jobs 2", "two trials at a time, trials under runs/sweeps/"),
            ("lighter sweep run configs/cascade --modes experiment --fail-fast", "the seeds; stop at a failure"),
            ("lighter sweep run configs/cascade --executor slurm --partition gpu --time 2:00:00 --gpus 1", "SLURM"),
            ("lighter sweep run my.yaml --mode experiment -o runs/seeds", "one config file over its seeds"),
        ),
        takes_config=False,
        extra={
            "slurm": "A `launcher:` block in ROOT's cfg.yaml (or the config file) sets submitit's parameters:\n"
            "  launcher: {partition: gpu, time: 120, gpus: 1, cpus: 8, mem_gb: 32, array_parallelism: 16}\n"
            "Any other key goes to submitit as written (slurm_account, slurm_constraint, slurm_setup, ...).\n"
            "Flags override the block. Job files go to OUT/.submitit/.",
        },
    ),
    Command(
        "sweep cancel",
        sweep_actions.cancel,
        "Cancel the SLURM tasks of the trials under OUT that are queued or running.",
        usage="[OUT]",
        about="scancel each array task that SLURM still holds for a trial under OUT (default runs/sweeps). A queued "
        "trial goes back to pending; a running one stops after its step with a checkpoint, as SIGTERM stops it. "
        "`lighter sweep run` continues them.",
        examples=(
            ("lighter sweep cancel", "the tasks of the trials under runs/sweeps"),
            ("lighter sweep cancel runs/lr-sweep", "those of another --out folder"),
            ("lighter sweep cancel runs/lr-sweep && lighter sweep status runs/lr-sweep", "then see what is pending"),
        ),
        takes_config=False,
    ),
]
COMMAND_LIST += [
    Command(
        "sweep best",
        sweep_actions.best,
        "Write a searched leaf's best trial (or the top K) as experiment leaves of the cascade, over seeds.",
        usage="OUT/<leaf> --to ROOT/experiment/<dataset>/<model>/<name> [--top K] [--seeds 0,1,2]",
        about="From the study of a searched leaf (a `search:` block), take the complete trial with the best "
        "monitored value (or the K best) and write its config, as it ran, with `seed: [...]` to the --to folder's "
        "cfg.yaml (top_1/, top_2/, ... for --top K), recording the trial in a header and in source.yaml. "
        "`lighter sweep run ROOT --modes experiment` then runs it over the seeds. Overwrites nothing.",
        options=(
            Option("--to", "FOLDER", "the experiment leaf to write, inside ROOT/experiment/"),
            Option("--top", "K", "the K best trials, as leaves top_1 ... top_K (default 1)"),
            Option("--seeds", "S,...", "the seeds of the experiment (default: the sweep's seed)"),
        ),
        examples=(
            (
                "lighter sweep best runs/sweeps/sweep/digits/cnn/search --to configs/cascade/experiment/digits/cnn/best"
                " --seeds 0,1,2",
                "the best trial over three seeds",
            ),
            ("lighter sweep best OUT/sweep/digits/cnn/search --to ROOT/experiment/digits/cnn/top --top 3", "top 3"),
            ("lighter sweep best OUT/sweep/digits/cnn/search --to ROOT/experiment/digits/cnn/one", "the sweep's seed"),
        ),
        takes_config=False,
    ),
]
PROFILE_HELP = (
    "A profile is a partial config of your own (API keys, workspace, tracking URI, your machine's accelerator),\n"
    "kept in ~/.config/lighter/profiles/NAME.yaml, or in the folder LIGHTER_PROFILE_DIR names. `--profile NAME`\n"
    "(or LIGHTER_PROFILE=NAME) merges it after the configs and before the overrides. lighter records none of its\n"
    "values: they appear as '<profile NAME>' in config.yaml, run.yaml, checkpoints and trackers."
)
COMMAND_LIST += [
    Command(
        "profile list",
        actions.profile_list,
        "List your profiles.",
        usage="",
        about="List the profiles in ~/.config/lighter/profiles (or the folder LIGHTER_PROFILE_DIR names).",
        takes_config=False,
        examples=(
            ("lighter profile list", "the names --profile accepts"),
            ("lighter profile list | grep gpu", "find one by name"),
            ("lighter profile list --debug", "with the full traceback, should the folder be unreadable"),
        ),
        extra={"profiles": PROFILE_HELP},
    ),
    Command(
        "profile show",
        actions.profile_show,
        "Print a profile, secret values masked.",
        usage="NAME",
        about="Print profile NAME as YAML under the path of its file; values of secret keys (api_key, token, "
        "password, ...) are masked.",
        takes_config=False,
        examples=(
            ("lighter profile show alice", "what --profile alice merges"),
            ("lighter profile show alice > alice-masked.yaml", "a copy you can share: its secrets are masked"),
            ("lighter profile show alice --debug", "with the full traceback of an error"),
        ),
        extra={"profiles": PROFILE_HELP},
    ),
]
COMMANDS: dict[str, Command] = {command.name: command for command in COMMAND_LIST}
