"""What a cluster user meets when SLURM says no, as one ConfigError each: the cause in SLURM's words and the fix.

submitit raises `FailedJobError` carrying `sbatch`'s stderr when a submission is refused, and a job that died before
running its function leaves only its log. Each row of `REFUSALS` reads one kind of sbatch refusal.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lighter.errors import ConfigError
from lighter.sweep.axes import LAUNCHER_KEY

RESOURCE_KEYS = ("cpus", "mem", "mem_gb", "gpus", "time", "nodes", "tasks_per_node")


def missing_sbatch() -> ConfigError:
    return ConfigError(
        "`sbatch` is not on the PATH: the slurm executor submits the trials through SLURM's sbatch",
        key=f"{LAUNCHER_KEY}::cluster",
        suggestion=(
            "Run `lighter sweep run` on the cluster's login node (or load its SLURM module), "
            "or run the trials here: --executor local, or `cluster: local` in the launcher: block."
        ),
    )


def _partitions() -> list[str]:
    """The partitions `sinfo` lists (the default one marked with `*` by sinfo, unmarked here)."""
    if shutil.which("sinfo") is None:
        return []
    try:
        listed = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip().rstrip("*") for line in listed.splitlines() if line.strip()]


def _no_configuration(reason: str, launcher: Mapping[str, Any]) -> ConfigError:
    return ConfigError(
        f"sbatch cannot find a SLURM configuration ({reason})",
        suggestion=(
            "Submit from a machine of the cluster (its login node), or point SLURM_CONF at the cluster's "
            "slurm.conf; --executor local runs the trials here instead."
        ),
    )


def _unknown_partition(reason: str, launcher: Mapping[str, Any]) -> ConfigError:
    asked = launcher.get("partition", launcher.get("slurm_partition"))
    known = _partitions()
    listed = f"Partitions here: {', '.join(known)}." if known else "`sinfo -s` lists the partitions."
    return ConfigError(
        f"SLURM has no partition '{asked}' ({reason})",
        key=f"{LAUNCHER_KEY}::partition",
        suggestion=f"{listed} Set launcher::partition or --partition to one of them.",
    )


def _refused_resources(reason: str, launcher: Mapping[str, Any]) -> ConfigError:
    asked = ", ".join(f"{k} {launcher[k]}" for k in RESOURCE_KEYS if launcher.get(k) is not None)
    partition = launcher.get("partition", launcher.get("slurm_partition"))
    where = f"partition '{partition}'" if partition else "the default partition"
    return ConfigError(
        f"SLURM refuses the resources asked for{f' ({asked})' if asked else ''}: {reason}",
        key=LAUNCHER_KEY,
        suggestion=(
            f"Ask for no more than one node of {where} has: `sinfo -N -o '%P %c %m %G %l'` shows its CPUs, "
            "memory (MB), GPUs and time limit. Lower cpus, mem (GB), gpus or time in the launcher: block "
            "(or --cpus, --mem-gb, --gpus, --time)."
        ),
    )


# (pattern in sbatch's stderr, what it means). The first that matches explains the refusal.
REFUSALS = (
    (
        r"Could not establish a configuration source|Unable to process configuration file|"
        r"Unable to contact slurm controller",
        _no_configuration,
    ),
    (r"[Ii]nvalid partition", _unknown_partition),
    (
        r"Requested node configuration is not available|More processors requested than permitted|"
        r"Memory specification can not be satisfied|Invalid generic resource|Requested time limit|"
        r"Node count specification invalid|QOSMax|AssocMax",
        _refused_resources,
    ),
)


def _reason(stderr: str) -> str:
    """sbatch's own sentence: its last `error:`/`fatal:` line, without the prefixes."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = [line for line in lines if re.search(r"\b(fatal|error):", line)] or lines or ["sbatch failed"]
    return re.sub(r"^sbatch: (error|fatal): (Batch job submission failed: )?", "", said[-1])


def refused_submission(stderr: str, launcher: Mapping[str, Any]) -> ConfigError:
    """A ConfigError for an sbatch refusal, from sbatch's stderr and the launcher settings."""
    for pattern, explain in REFUSALS:
        match = next((line for line in stderr.splitlines() if re.search(pattern, line)), None)
        if match is not None:
            return explain(_reason(stderr), launcher)
    return ConfigError(
        f"sbatch refused the job array: {_reason(stderr)}",
        key=LAUNCHER_KEY,
        suggestion="Check the launcher: block's settings against the cluster's limits (`sinfo -s`, `sacctmgr`).",
    )


def failed_at_start(job_id: str, trial: str, log: Path | None, tail: str) -> ConfigError:
    """A job that ended before lighter ran its trial: the node could not start it (python, setup, srun)."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    # The node's own words (e.g. `slurmstepd: error: execve(): ...: No such file`), not srun's "task 0: Exited".
    errors = [line for line in lines if re.search(r"error|Error|fatal|not found|No such", line)]
    said = next((line for line in errors if not re.search(r"task \d+: Exited with exit code", line)), None)
    said = re.sub(r"^[\w.-]+: (error|fatal): ", "", said or (errors or lines or ["no output"])[-1])
    where = f"; its log: {log}" if log is not None else ""
    return ConfigError(
        f"SLURM job {job_id} ({trial}) ended before lighter started on the node: {said}",
        key=LAUNCHER_KEY,
        suggestion=(
            "The job runs this machine's Python on the node: make it (and lighter) reachable there, e.g. a "
            f"virtualenv on a shared filesystem, or set launcher::python and launcher::setup{where}."
        ),
    )
