"""The `lighter` command: one table of commands, our own help text for each, fire to call them.

Adding a command is one entry in `COMMANDS`:

    def report(*configs: str, out: str = "report.md", **overrides: str) -> None:
        \"\"\"Import heavy modules inside, so `lighter --help` stays instant.\"\"\"
        from lighter.report import write
        write(_configs(configs, overrides), overrides, out)

    Command("report", report, "Write a report of a config.", usage="CONFIG... [KEY::PATH=VALUE ...] [--out FILE]",
            about="...", options=(Option("--out", "FILE", "where the report goes"),),
            examples=(("lighter report config.yaml --out r.md", "write r.md"),))

A command with sub-commands is several entries named with a space ("sweep run", "sweep status"): `lighter sweep`
lists them. Options listed in `options` are parsed here, before fire sees them: `--out FILE`, `--out=FILE` and the
short form (`-o FILE`) all reach the function as `out="FILE"`; an option without a metavar is a flag that takes no
value (`--trust`), so `lighter show c.yaml --trust key=value` keeps `key=value` as an override. Every other
argument goes to fire as the exact string typed: fire would read `a#b=[1]` as Python (and drop everything after
`#`), so positionals arrive in `*configs` and `--key::path=value` in `**overrides`, and the config loader parses
them as YAML. The help text is ours (`render_help`); fire's is never shown. Heavy modules load inside the commands,
so `lighter --help` and `lighter --version` import neither fire nor torch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from lighter.keys import STAGE_HELP, SYSTEM_KEYS, Stage
from lighter.quiet import VERBOSE_ENV, hide_noise

HELP_FLAGS = ("--help", "-h")
VERSION_FLAGS = ("--version", "-V")
DEBUG_FLAG = "--debug"
VERBOSE_FLAG = "--verbose"
DEBUG_ENV = "LIGHTER_DEBUG"
CONFIG_FLAG = "config"
VERSIONED = ("lighter", "torch", "pytorch-lightning", "lightning")  # `lightning` only when installed


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


# --- the commands ---------------------------------------------------------------------------------------------------


def _configs(configs: tuple[str, ...], overrides: dict[str, str]) -> list[str]:
    """The config files, including one given as `--config FILE` (Lighter's own CLI names the argument so)."""
    named = overrides.pop(CONFIG_FLAG, None)
    return [*([named] if named is not None else []), *configs]


def _stage_command(stage: Stage) -> Callable[..., None]:
    def command(*configs: str, run_dir: str | None = None, profile: str | None = None, **overrides: str) -> None:
        from lighter.runner import run

        run(stage, _configs(configs, overrides), overrides, run_dir=run_dir, profile=profile)

    command.__name__ = command.__qualname__ = stage.value
    command.__doc__ = STAGE_HELP[stage]
    return command


def resume(run_dir: str, *positional: str, profile: str | None = None, **overrides: str) -> None:
    """Continue a recorded fit from its newest checkpoint, in its own directory."""
    from lighter.run.resume import resume as resume_run

    resume_run(run_dir, [*positional, *(f"{key}={value}" for key, value in overrides.items())], profile=profile)


def show(*configs: str, trust: bool = False, profile: str | None = None, **overrides: str) -> None:
    """Print the merged config after overrides, as YAML: exactly what would run, secrets masked. Imports nothing."""
    from lighter.config.loader import dump_yaml
    from lighter.config.trust import trust_summary
    from lighter.runner import prepare

    experiment = prepare(Stage.FIT, _configs(configs, overrides), overrides, imports=False, profile=profile)
    if trust:
        print(experiment.secrets.scrub(trust_summary(experiment.config, experiment.loaded)))
    print(dump_yaml(experiment.secrets.mask(experiment.config)), end="")


def check(*configs: str, stage: str = "fit", profile: str | None = None, **overrides: str) -> None:
    """Build everything a stage builds and run one batch per loop through it, without training or writing."""
    from lighter.runner import check as run_check

    experiment = run_check(stage, _configs(configs, overrides), overrides, profile=profile)
    if experiment.config.get("project"):
        print(f"lighter check: imported `project` from {experiment.config['project']}")
    print(f"lighter check: OK: `lighter {experiment.stage.value}` builds and runs one batch.")


def dashboard(*folders: str, port: str = "8050", host: str = "127.0.0.1", allow_host: str = "", **unknown: str) -> None:
    """Serve interactive plots of every run under OUT until Ctrl+C."""
    if unknown:
        _fail(
            f"unknown option --{next(iter(unknown))} for `lighter dashboard`. "
            "Its options: --port PORT, --host HOST, --allow-host NAME,..."
        )
    if len(folders) != 1:
        got = "none" if not folders else ", ".join(folders)
        _fail(f"lighter dashboard takes one folder, the one holding your runs (got {got}): lighter dashboard runs/")
    from lighter.dashboard.serve import ServeError, serve

    try:
        number = int(port)
    except ValueError:
        _fail(f"--port {port}: expected a whole number, e.g. --port 8050")
    try:
        serve(folders[0], port=number, host=str(host), allow_hosts=tuple(str(allow_host).split(",")))
    except ServeError as err:
        _fail(str(err))


def profile_list() -> None:
    """List the profiles in the profile folder."""
    from lighter.tracking.commands import list_text

    print(list_text())


def profile_show(name: str) -> None:
    """Print a profile as YAML, secret values masked, under the path of its file."""
    from lighter.tracking.commands import show_text

    print(show_text(name), end="")


def lr_find(*configs: str, run_dir: str | None = None, profile: str | None = None, **overrides: str) -> None:
    """Lightning's learning-rate range test on a fit config."""
    from lighter.tuner import lr_find as find

    find(_configs(configs, overrides), overrides, run_dir=run_dir, profile=profile)


def scale_batch_size(*configs: str, run_dir: str | None = None, profile: str | None = None, **overrides: str) -> None:
    """Lightning's batch-size finder on a fit config."""
    from lighter.tuner import scale_batch_size as scale

    scale(_configs(configs, overrides), overrides, run_dir=run_dir, profile=profile)


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
            _stage_command(stage),
            STAGE_HELP[stage],
            about=STAGE_HELP[stage],
            options=(CONFIG_OPTION, RUN_DIR_OPTION, PROFILE_OPTION),
            examples=STAGE_EXAMPLES[stage],
        )
        for stage in Stage
    ),
    Command(
        "resume",
        resume,
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
        show,
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
        check,
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
        lr_find,
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
        scale_batch_size,
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
        dashboard,
        "Serve interactive plots of every run under a folder: sweeps grouped by axis, seeds as bands.",
        usage="OUT [--port PORT] [--host HOST] [--allow-host NAME,...]",
        about=(
            "Serve a page of training curves for every run under OUT: sweep trials, lighter runs with a batch log, "
            "and any Lightning CSVLogger metrics.csv. Per-epoch logs are made from batch logs on first view and "
            "cached as epoch_log.csv beside them. JSON for scripts: GET /api/runs and /api/epochs?run=ID."
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


def _sweep_command(name: str) -> Callable[..., None]:
    def command(*args: str, **kwargs: str) -> None:
        from lighter.sweep import commands

        getattr(commands, name)(*args, **kwargs)

    command.__name__ = command.__qualname__ = name
    return command


COMMAND_LIST += [
    Command(
        "sweep expand",
        _sweep_command("expand"),
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
        _sweep_command("status"),
        "List every trial under OUT with its axis values and status.",
        usage="[OUT] [--format table|json]",
        about="Every trial under OUT (default runs/sweeps): pending, running, done, failed or stale "
        "(done, but its config changed since).",
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
        _sweep_command("results"),
        "Final and best validation metrics per trial; mean ± std over seeds per experiment leaf.",
        usage="[OUT] [--csv FILE]",
        about="Per trial under OUT (default runs/sweeps): the final and best value of each validation metric "
        "(from its metrics.csv, else its batch_log.csv) and its test metrics. Per experiment leaf: mean ± sample "
        "std over its done trials, with n.",
        options=(Option("--csv", "FILE", "also write the per-trial table to FILE (and FILE_summary.csv)"),),
        examples=(
            ("lighter sweep results", "the results of the trials under runs/sweeps"),
            ("lighter sweep results runs/lr-sweep", "those of another --out folder"),
            ("lighter sweep results runs/sweeps --csv results.csv", "also save them (and results_summary.csv)"),
        ),
        takes_config=False,
    ),
    Command(
        "sweep run",
        _sweep_command("run"),
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
            Option("--jobs", "N", "trials at once on this machine (default 1); with GPUs, each gets its own", "-j"),
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
        profile_list,
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
        profile_show,
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


# --- help -----------------------------------------------------------------------------------------------------------


def _section(title: str, rows: list[tuple[str, str]] | str) -> str:
    if isinstance(rows, str):
        return f"{title}:\n" + "\n".join(f"  {line}" for line in rows.splitlines())
    width = max(len(left) for left, _ in rows)
    lines = []
    for left, right in rows:
        if width > 40:  # long example lines: the explanation goes underneath
            lines += [f"  {left}", f"      {right}"] if right else [f"  {left}"]
        else:
            lines.append(f"  {left.ljust(width)}  {right}".rstrip())
    return f"{title}:\n" + "\n".join(lines)


def _wrap(text: str, width: int = 100) -> str:
    import textwrap

    return "\n".join(textwrap.fill(part, width) for part in text.split("\n"))


def render_help(name: str | None = None) -> str:
    """`lighter --help` (name None), `lighter fit --help`, or the list of a command group (`lighter sweep`)."""
    if name in COMMANDS:
        command = COMMANDS[name]
        options = [*command.options, *GLOBAL_OPTIONS]
        parts = [f"usage: lighter {name} {command.usage} [options]", _wrap(command.about or command.summary)]
        if command.takes_config:
            parts.append(CONFIG_HELP)
        parts.append(_section("options", [(o.usage(), o.help) for o in options]))
        if command.examples:
            parts.append(_section("examples", list(command.examples)))
        parts += [_section(title, text) for title, text in command.extra.items()]
        if command.takes_config:
            parts += [_section("keys", KEYS_HELP), SHOW_HINT]
        return "\n\n".join(parts) + "\n"
    prefix = f"{name} " if name else ""
    listed = [c for c in COMMAND_LIST if c.name.startswith(prefix)]
    title = f"lighter {name}" if name else "lighter"
    parts = [
        f"usage: {title} COMMAND [CONFIG...] [KEY::PATH=VALUE ...] [options]",
        "Run a deep-learning experiment described in YAML with PyTorch Lightning." if not name else "",
        _section("commands", [(c.name, c.summary) for c in listed]),
    ]
    if not name:
        parts += [
            _section(
                "options",
                [
                    ("-h, --help", "show this help; `lighter COMMAND --help` shows a command's options and examples"),
                    ("-V, --version", "print the versions of lighter, torch and Lightning"),
                    *[(o.usage(), o.help) for o in GLOBAL_OPTIONS[:-1]],
                ],
            ),
            _section(
                "examples",
                [
                    ("lighter fit config.yaml", "train"),
                    ("lighter fit config.yaml trainer::max_epochs=5", "train, with one key overridden"),
                    ("lighter test config.yaml args::test::ckpt_path=runs/best.ckpt", "test a checkpoint"),
                    ("lighter fit --help", "what fit takes, with more examples"),
                ],
            ),
            SHOW_HINT,
        ]
    else:
        parts.append(f"Run `lighter {name} COMMAND --help` for a command's options and examples.")
    return "\n\n".join(p for p in parts if p) + "\n"


def versions_text() -> str:
    """`lighter --version`: read from the installed packages' metadata, so nothing heavy is imported."""
    from importlib import metadata

    lines = []
    for package in VERSIONED:
        try:
            lines.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            if package == "lighter":
                lines.append("lighter (not installed; running from source)")
    return "\n".join(lines) + f"\npython {sys.version.split()[0]}\n"


# --- dispatch -------------------------------------------------------------------------------------------------------


def _fail(message: str, code: int = 2, *, quiet: bool = False) -> None:
    if not quiet:
        print(f"lighter: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _find_command(argv: list[str]) -> tuple[str | None, list[str]]:
    """The longest command name at the front of argv (`sweep run` before `sweep`), and the arguments after it."""
    for n in range(min(len(argv), 3), 0, -1):
        name = " ".join(argv[:n])
        if name in COMMANDS:
            return name, argv[n:]
    return None, argv


def _is_group(word: str) -> bool:
    return any(name.startswith(f"{word} ") for name in COMMANDS)


def _fire_argv(command: Command, args: list[str]) -> list[str]:
    """The arguments as fire must see them: options by keyword, everything else as the exact string typed."""
    options = {**{o.name: o for o in command.options}, **{o.short: o for o in command.options if o.short}}
    if command.takes_config:
        options.setdefault(CONFIG_OPTION.name, CONFIG_OPTION)
    out = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        name, has_value, value = arg.partition("=")
        option = options.get(name) if arg.startswith("-") else None
        if option is not None and option.metavar is None:
            if has_value:
                _fail(f"{option.name} is a flag and takes no value; write `{option.name}` alone.")
            out.append(f"--{option.keyword}=True")
        elif option is not None:
            if not has_value:
                if i >= len(args):
                    _fail(f"{option.name} needs a value: {option.name} {option.metavar}.")
                value, i = args[i], i + 1
            out.append(f"--{option.keyword}={value!r}")
        elif arg.startswith("--") and has_value:
            out.append(f"{name}={value!r}")
        elif arg.startswith("--"):
            out.append(arg)  # `--key::path VALUE`: fire takes the next argument as its value
        elif arg.startswith("-") and len(arg) > 1 and not os.path.exists(arg) and not _is_number(arg):
            known = ", ".join(o.usage() for o in command.options) or "none besides --help, --debug, --verbose"
            _fail(f"unknown option '{arg}' for `lighter {command.name}`. Its options: {known}.")
        else:
            out.append(repr(arg))
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fire_tree() -> dict:
    """Commands as fire wants them: nested dicts for sub-commands."""
    tree: dict = {}
    for command in COMMAND_LIST:
        *groups, leaf = command.name.split(" ")
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = command.run
    return tree


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lighter` console script and `python -m lighter`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if VERBOSE_FLAG in argv:
        os.environ[VERBOSE_ENV] = "1"  # processes Lightning starts for more devices inherit it
    argv = [a for a in argv if a not in (DEBUG_FLAG, VERBOSE_FLAG)]

    if not argv:
        print(render_help(), end="")
        raise SystemExit(2)  # a bare `lighter` ran nothing: a script that calls it by mistake must notice
    if argv[0] in HELP_FLAGS:
        print(render_help(), end="")
        return
    if argv[0] in VERSION_FLAGS:
        print(versions_text(), end="")
        return
    name, args = _find_command(argv)
    if name is None:
        if _is_group(argv[0]):
            print(render_help(argv[0]), end="")
            raise SystemExit(0 if any(a in HELP_FLAGS for a in argv[1:]) else 2)
        from lighter.config.errors import did_you_mean

        words = sorted({n.split(" ")[0] for n in COMMANDS})
        hint = did_you_mean(argv[0], words, fallback="Commands: " + ", ".join(words) + ".")
        _fail(f"unknown command '{argv[0]}'. {hint} `lighter --help` lists them.")
    if any(a in HELP_FLAGS for a in args):
        print(render_help(name), end="")
        return
    command = COMMANDS[name]
    fire_args = _fire_argv(command, args)

    hide_noise()
    import fire

    from lighter.adapters import BatchAccessError
    from lighter.config.errors import ConfigError

    try:
        fire.Fire(_fire_tree(), command=[*name.split(" "), *fire_args], name="lighter")
    except (ConfigError, BatchAccessError) as err:
        if debug:
            raise
        # Every process meets the same config mistake: one message is enough.
        _fail(err.render() if isinstance(err, ConfigError) else str(err), quiet=_rank() != 0)
    except BrokenPipeError:
        sys.stderr.close()  # `lighter show ... | head`: the reader left, nothing to report
    except Exception as err:
        if debug or not _peer_failed(err):
            if getattr(err, "lighter_component", None):  # set by the runner: the user's own code raised
                print(f"lighter: error in {err.lighter_component}; its traceback follows.", file=sys.stderr)
            raise
        _fail(f"process {_rank()} stopped because another process of this run failed; its error is above.", 1)


def _rank() -> int:
    """This process's rank under torchrun, SLURM or Lightning's launcher; 0 outside them."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _peer_failed(err: BaseException) -> bool:
    from lighter.preflight import peer_failed

    return peer_failed(err)
