"""The SLURM executor: every trial to run becomes one task of a job array, submitted through submitit.

submitit writes the sbatch script, pickles the call and collects the result; we only name the parameters and
wait. Each task runs `lighter.sweep.attempt.run_trial` on its trial, exactly what the local executor's processes
run, so locking, resume and records behave the same on a cluster. `cluster: local` in the `launcher:` block runs
the same submitit path on this machine (submitit's LocalExecutor), which is how it is tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lighter.config.errors import ConfigError
from lighter.sweep.attempt import run_trial
from lighter.sweep.axes import LAUNCHER_KEY
from lighter.sweep.local import settle
from lighter.sweep.trial import Trial

SUBMITIT_FOLDER = ".submitit"
POLL_SECONDS = {"slurm": 5.0}  # how often to look at the jobs: SLURM's accounting is asked each time
POLL_LOCAL_SECONDS = 0.5
# Short names a `launcher:` block (or a flag) may use, and submitit's parameter each stands for. Any other key goes
# to submitit as written (timeout_min, slurm_constraint, slurm_setup, slurm_additional_parameters, ...).
ALIASES = {
    "partition": "slurm_partition",
    "time": "timeout_min",
    "gpus": "gpus_per_node",
    "cpus": "cpus_per_task",
    "mem": "mem_gb",
    "account": "slurm_account",
    "qos": "slurm_qos",
    "array_parallelism": "slurm_array_parallelism",
}
OWN_KEYS = ("cluster", "folder")  # ours, not submitit's: which submitit cluster, where its files go


def minutes(value: Any, key: str) -> int:
    """A time limit as whole minutes: `90`, or SLURM's forms `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM[:SS]`."""
    text = str(value).strip()
    try:
        if isinstance(value, bool) or text.startswith("-"):
            raise ValueError(text)
        days, _, rest = text.rpartition("-")
        parts = [int(p) for p in rest.split(":")]
        if days:  # D-HH[:MM[:SS]]
            hours, mins, secs = (parts + [0, 0])[:3]
        else:  # MM, MM:SS or HH:MM:SS
            hours, mins, secs = ([0, 0] + parts)[-3:] if len(parts) == 3 else (0, parts[0], (parts + [0])[1])
        if len(parts) > 3 or min(parts) < 0:
            raise ValueError(text)
        total = int(days or 0) * 1440 + hours * 60 + mins + (1 if secs else 0)
    except ValueError:
        total = 0
    if total <= 0:
        raise ConfigError(
            f"'{value}' is not a time limit", key=key, suggestion="Write minutes (90) or SLURM's form (1:30:00)."
        )
    return total


def parameters(launcher: Mapping[str, Any], where: str = LAUNCHER_KEY) -> tuple[dict[str, Any], dict[str, Any]]:
    """(submitit parameters, our own keys) from a `launcher:` block merged with flags."""
    own = {k: v for k, v in launcher.items() if k in OWN_KEYS and v is not None}
    params: dict[str, Any] = {}
    for key, value in launcher.items():
        if key in OWN_KEYS or value is None:
            continue
        name = ALIASES.get(key, key)
        params[name] = minutes(value, f"{where}::{key}") if name == "timeout_min" else value
    return params, own


def _job_call(trial_dir: str, rerun_stale: bool) -> int:
    """What one array task runs."""
    return run_trial(trial_dir, rerun_stale=rerun_stale)


def make_executor(out: Path, launcher: Mapping[str, Any]) -> Any:
    """submitit's AutoExecutor with the launcher's parameters; ConfigErrors name what it refuses."""
    try:
        import submitit
    except ImportError as err:
        raise ConfigError(
            "the slurm executor needs submitit, which is not installed",
            suggestion="pip install 'lighter[slurm]' (or pip install submitit)",
        ) from err

    params, own = parameters(launcher)
    folder = Path(own.get("folder") or out / SUBMITIT_FOLDER) / "%j"  # an array task: <array id>_<index>
    cluster = own.get("cluster", "slurm")
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    except (ValueError, RuntimeError) as err:
        raise ConfigError(
            f"submitit cannot use the cluster '{cluster}': {err}",
            key=f"{LAUNCHER_KEY}::cluster",
            suggestion="Run on a SLURM login node (sbatch on the PATH), or `cluster: local` to try it here.",
        ) from err
    params.setdefault("name", "lighter-sweep")
    try:
        executor.update_parameters(**params)
    except (NameError, ValueError, AssertionError, TypeError) as err:
        raise ConfigError(
            f"submitit refuses the launcher parameters: {err}",
            key=LAUNCHER_KEY,
            suggestion=f"Use submitit's names (timeout_min, slurm_partition, ...) or ours: {', '.join(ALIASES)}.",
        ) from err
    return executor


class SlurmExecutor:
    """Submits the trials as one job array, then reports each trial's start and end as its record changes."""

    def __init__(self, out: Path, launcher: Mapping[str, Any], *, rerun_stale: bool = False):
        self.out = Path(out)
        self.launcher = dict(launcher)
        self.rerun_stale = rerun_stale
        self.jobs: list[Any] = []

    def run(
        self,
        trials: Sequence[Path],
        on_start: Callable[[Path, str | None], None],
        on_end: Callable[[Path, str, float, int], bool],
        on_submit: Callable[[str, int], None] | None = None,
    ) -> None:
        if not trials:
            return
        executor = make_executor(self.out, self.launcher)
        poll = POLL_SECONDS.get(executor.cluster, POLL_LOCAL_SECONDS)
        self.jobs = executor.map_array(_job_call, [str(t) for t in trials], [self.rerun_stale] * len(trials))
        if on_submit is not None:
            on_submit(str(self.jobs[0].job_id).split("_")[0], len(self.jobs))
        waiting = dict(zip(self.jobs, trials, strict=True))
        started: dict[Path, float] = {}
        stopping = False
        while waiting:
            for job, trial in list(waiting.items()):
                if trial not in started and Trial(Path(trial)).record().get("status") == "running":
                    started[trial] = time.perf_counter()
                    on_start(trial, None)
                if not job.done():
                    continue
                del waiting[job]
                code = _exit_code(job)
                seconds = time.perf_counter() - started.get(trial, time.perf_counter())
                if not on_end(trial, settle(trial, code), seconds, code) and not stopping:
                    stopping = True
                    for other in waiting:
                        other.cancel(check=False)
            if waiting:
                time.sleep(poll)


def _exit_code(job: Any) -> int:
    """The task's return value (run_trial's exit code); 1 when the task itself failed, e.g. killed by SLURM."""
    try:
        result = job.result()
    except Exception:  # submitit raises the task's error, or UncompletedJobError for a task SLURM killed
        return 1
    return result if isinstance(result, int) else 1
