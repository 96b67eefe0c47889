"""The SLURM executor: every trial to run becomes one task of a job array, submitted through submitit.

submitit writes the sbatch script, pickles the call and collects the result; we only name the parameters and
wait. Each task runs `lighter.sweep.attempt.run_trial` on its trial, exactly what the local executor's processes
run, so locking, resume and records behave the same on a cluster. `cluster: local` in the `launcher:` block runs
the same submitit path on this machine (submitit's LocalExecutor).

Preemption and time limits: the job asks SLURM for SIGUSR1 `signal_delay_s` seconds (90 by default) before its
time limit. That is Lightning's requeue signal: it saves a checkpoint and requeues the task, which then resumes
the trial (its run directory has an interrupted run with a checkpoint). submitit's own signal (SIGUSR2) would
requeue without a checkpoint. The runner learns what SLURM holds from `squeue` (lighter.sweep.slurm_jobs), so a
requeued task is waited for, not counted as ended.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lighter.errors import ConfigError
from lighter.names import Status
from lighter.sweep import slurm_jobs
from lighter.sweep.attempt import run_trial
from lighter.sweep.axes import LAUNCHER_KEY
from lighter.sweep.local import settle
from lighter.sweep.slurm_cancel import cancel, on_slurm
from lighter.sweep.slurm_errors import failed_at_start, missing_sbatch, refused_submission
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
    "setup": "slurm_setup",
    "signal_delay_s": "slurm_signal_delay_s",
}
# Ours, not submitit's update_parameters: which submitit cluster, where its files go, the Python the job runs,
# whether Ctrl-C on the runner cancels its tasks, the database of searched leaves' studies
# (lighter/sweep/search_loop.py), how often the runner asks squeue about its tasks (seconds).
OWN_KEYS = ("cluster", "folder", "python", "cancel_on_stop", "storage", "poll_s")
REQUEUE_SIGNAL = "USR1"  # Lightning's SLURMEnvironment.requeue_signal: checkpoint, then `scontrol requeue`
DEFAULT_SIGNAL_DELAY_S = 90


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
    poll = own.get("poll_s")
    if poll is not None and (isinstance(poll, bool) or not isinstance(poll, int | float) or poll <= 0):
        raise ConfigError(
            f"'{poll}' is not a number of seconds", key=f"{where}::poll_s", suggestion="Write one, e.g. poll_s: 10."
        )
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
        import submitit  # lazy: optional (lighter[slurm]); `lighter --help` imports this module's callers
    except ImportError as err:
        raise ConfigError(
            "the slurm executor needs submitit, which is not installed",
            suggestion="pip install 'lighter[slurm]' (or pip install submitit)",
        ) from err

    params, own = parameters(launcher)
    folder = Path(own.get("folder") or out / SUBMITIT_FOLDER) / "%j"  # an array task: <array id>_<index>
    cluster = own.get("cluster", "slurm")
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise missing_sbatch()
    python = {"slurm_python": str(own["python"])} if own.get("python") and cluster == "slurm" else {}
    if cluster == "slurm":
        delay = int(params.get("slurm_signal_delay_s", DEFAULT_SIGNAL_DELAY_S))
        extra = dict(params.get("slurm_additional_parameters") or {})
        extra.setdefault("signal", f"{REQUEUE_SIGNAL}@{delay}")
        params["slurm_additional_parameters"] = extra
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster, **python)
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


def submit_array(executor: Any, launcher: Mapping[str, Any], call: Callable[..., Any], *columns: Sequence) -> list:
    """One array task per row of `columns`, each running `call(*row)`; sbatch's refusal as a ConfigError."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's refusal, which we explain
            return executor.map_array(call, *columns)
    except Exception as err:
        if type(err).__name__ == "FailedJobError":  # submitit's: sbatch refused, its stderr is the message
            raise refused_submission(str(err), launcher) from err
        raise


class SlurmExecutor:
    """Submits the trials as one job array, then reports each trial's start and end as its record changes."""

    def __init__(self, out: Path, launcher: Mapping[str, Any], *, rerun_stale: bool = False):
        self.out = Path(out)
        self.launcher = dict(launcher)
        self.rerun_stale = rerun_stale
        self.jobs: list[Any] = []
        self.waiting_for: dict[Any, Path] = {}

    def submit(self, trials: Sequence[Path]) -> tuple[Any, list[Any]]:
        """(executor, one job per trial); the trials are `queued` once SLURM took them."""
        executor = make_executor(self.out, self.launcher)
        before = {t: Trial(Path(t)).record().get("status") for t in trials}
        for trial in trials:
            Trial(Path(trial)).update(status=Status.QUEUED.value)
        try:
            jobs = submit_array(
                executor, self.launcher, _job_call, [str(t) for t in trials], [self.rerun_stale] * len(trials)
            )
        except Exception:
            for trial, status in before.items():
                Trial(Path(trial)).update(status=status or Status.PENDING.value)
            raise
        for job, trial in zip(jobs, trials, strict=True):
            Trial(Path(trial)).update(slurm_job=str(job.job_id))
        return executor, jobs

    def on_slurm(self, trials: Sequence[Path]) -> dict[Path, str]:
        """{trial: its array task} for the trials an earlier run submitted that SLURM still holds."""
        return on_slurm(trials) if self.launcher.get("cluster", "slurm") == "slurm" else {}

    def cancel(self) -> dict[Path, str]:
        """scancel this runner's tasks that SLURM still holds (Ctrl-C with cancel_on_stop)."""
        return cancel([self.waiting_for[job] for job in self.jobs if job in self.waiting_for])

    def adopt(self, held: Mapping[Path, str]) -> list[Any]:
        """submitit's handles on array tasks an earlier run submitted, to wait for them as for our own."""
        import submitit  # lazy: optional (lighter[slurm]), as in make_executor

        folder = Path(parameters(self.launcher)[1].get("folder") or self.out / SUBMITIT_FOLDER) / "%j"
        return [submitit.SlurmJob(folder=folder, job_id=job_id) for job_id in held.values()]

    def run(
        self,
        trials: Sequence[Path],
        on_start: Callable[[Path, str | None], None],
        on_end: Callable[[Path, str, float, int], bool],
        on_submit: Callable[[str, int], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        held: Mapping[Path, str] | None = None,
    ) -> None:
        """Submit `trials`, then wait for them and for the `held` ones (submitted earlier, still on SLURM)."""
        held = dict(held or {})
        trials = [t for t in trials if t not in held]
        if not trials and not held:
            return
        self.jobs = []
        cluster = self.launcher.get("cluster", "slurm")
        if trials:
            executor, self.jobs = self.submit(trials)
            cluster = executor.cluster
            if on_submit is not None:
                on_submit(str(self.jobs[0].job_id).split("_")[0], len(self.jobs))
        adopted = self.adopt(held)
        on_scheduler = cluster == "slurm"
        poll = float(self.launcher.get("poll_s") or POLL_SECONDS.get(cluster, POLL_LOCAL_SECONDS))
        every = [*trials, *held]
        attempts = {t: int(Trial(Path(t)).record().get("attempts") or 0) for t in every}
        waiting = dict(zip([*self.jobs, *adopted], every, strict=True))
        self.jobs, self.waiting_for = list(waiting), dict(waiting)
        started: dict[Path, float] = {}
        seen_running: set[Path] = set()
        failed_start: list[Any] = []
        stopping = False
        while waiting:
            states = slurm_jobs.held(str(job.job_id) for job in waiting) if on_scheduler else None
            for job, trial in list(waiting.items()):
                if trial not in started and Trial(Path(trial)).record().get("status") == Status.RUNNING:
                    started[trial] = time.perf_counter()
                    on_start(trial, None)
                if states is None:
                    if not job.done():
                        continue
                else:
                    phase = slurm_jobs.phase(states.get(str(job.job_id)))
                    if phase == "running":
                        seen_running.add(trial)
                        continue
                    if phase == "queued":
                        if trial in seen_running and on_note is not None:  # it ran, and SLURM queued it again
                            seen_running.discard(trial)
                            on_note(f"{Trial(Path(trial)).name}: SLURM requeued job {job.job_id}; waiting for it")
                        continue
                del waiting[job]
                if on_scheduler and not has_result(job):
                    if int(Trial(Path(trial)).record().get("attempts") or 0) == attempts[trial]:
                        failed_start.append((job, trial))  # lighter never ran: the node could not start it
                        continue
                    code = 1  # killed by SLURM (cancelled, time limit, out of memory) before it could return
                else:
                    code = exit_code(job)
                seconds = time.perf_counter() - started.get(trial, time.perf_counter())
                if not on_end(trial, settle(trial, code), seconds, code) and not stopping:
                    stopping = True
                    for other in waiting:
                        other.cancel(check=False)
            if waiting:
                time.sleep(poll)
        if failed_start:
            for _job, trial in failed_start:
                Trial(Path(trial)).update(status=Status.PENDING.value)
            job, trial = failed_start[0]
            raise failed_at_start(str(job.job_id), Trial(Path(trial)).name, *log_of(job))


def has_result(job: Any) -> bool:
    return Path(job.paths.result_pickle).exists()


def log_of(job: Any) -> tuple[Path | None, str]:
    """The task's error log and its text (where srun and the node say why a job could not start)."""
    path = Path(job.paths.stderr)
    if not path.is_file():
        return None, ""
    return path, path.read_text(errors="replace")


def exit_code(job: Any) -> int:
    """The task's return value (run_trial's exit code); 1 when the task itself failed, e.g. killed by SLURM."""
    try:
        result = job.result()
    except Exception:  # submitit raises the task's error, or UncompletedJobError for a task SLURM killed
        return 1
    return result if isinstance(result, int) else 1
