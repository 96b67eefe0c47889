"""A single-node SLURM cluster in a temporary folder, for the tests and for trying lighter's SLURM path on a laptop.

    sudo python tests/slurm_cluster.py start            # prints the folder and the two variables to export
    eval "$(sudo python tests/slurm_cluster.py env /tmp/lighter-slurm-XXXX)"
    lighter sweep run ROOT --executor slurm --partition debug --time 10
    sudo python tests/slurm_cluster.py stop /tmp/lighter-slurm-XXXX

Needs Debian's `slurm-wlm` and `munge` (`make slurm` installs them) and root: slurmd starts jobs as their user.
No systemd: `munged` runs with its own key and socket in the folder, `slurmctld` and `slurmd` in the foreground as
children of whoever starts them. `slurm.conf` is written for this machine (its short hostname, NodeAddr=127.0.0.1,
the RealMemory that `slurmd -C` measures: a larger value would drain the node), with plugins that need no
cgroups, free ports (so two clusters never meet), a requeued job started again within seconds rather than after
the default 121 s, and state and spool under the folder. The node offers at least SLOTS CPUs, more than a laptop
may have (`SlurmdParameters=config_overrides` keeps slurmd from draining it): test jobs mostly wait, so several run
at once. Job ids start at a random number: Lightning derives a DDP job's MASTER_PORT from its id, so two clusters'
jobs (each counting from 1) would take the same port. A job that ignores SIGTERM is killed 10 s later (KillWait).
There is no accounting database, so `bin/sacct` answers submitit's `sacct -o JobID,State,NodeList --parsable2 -j
ID` from `scontrol show job`; every command needs the folder's SLURM_CONF, and `bin/` first on the PATH.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PARTITION = "debug"
SLOTS = 8  # CPUs the node offers at least, whatever this machine has
DAEMONS = ("slurmctld", "slurmd")
REQUIRED = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol")
MISSING_HINT = "Debian/Ubuntu: apt-get install slurm-wlm munge (or `make slurm`); the daemons need root"

CONF = """\
ClusterName=lighter
FirstJobId={first_job}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge/munge.socket,cred_expire=5
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=900
KillWait=10
InactiveLimit=0
EnforcePartLimits=ALL
NodeName={host} NodeAddr=127.0.0.1 {node}
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""

# submitit asks `sacct -o JobID,State,NodeList --parsable2 -j ID ...`; without accounting, scontrol knows the jobs
# (for MinJobAge seconds after they end). An array's pending rest shows as one record, `ID_[2-3]`, as sacct writes it.
SACCT = """\
#!{python}
import subprocess, sys

args = sys.argv[1:]
ids = [args[i + 1] for i, a in enumerate(args) if a == "-j"]
fields = args[args.index("-o") + 1].split(",") if "-o" in args else ["JobID", "State", "NodeList"]
print("|".join(fields))
for job in ids:
    shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True)
    for line in shown.stdout.splitlines():
        rec = dict(part.split("=", 1) for part in line.split() if "=" in part)
        task = rec.get("ArrayTaskId")
        if task is None:
            name = rec.get("JobId", "")
        elif task.isdigit():
            name = rec["ArrayJobId"] + "_" + task
        else:
            name = rec["ArrayJobId"] + "_[" + task + "]"
        nodes = rec.get("NodeList", "")
        values = {{"JobID": name, "State": rec.get("JobState", ""), "NodeList": "" if nodes == "(null)" else nodes}}
        print("|".join(values.get(f, "") for f in fields))
"""


def missing() -> list[str]:
    """The programs this cluster needs that are not installed."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [name for name in REQUIRED if shutil.which(name, path=path) is None]


def _program(name: str) -> str:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])) or name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_line(slots: int = SLOTS) -> str:
    """The node's CPUs (at least `slots`, as one socket of cores) and the RealMemory `slurmd -C` measures."""
    first = subprocess.run([_program("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    measured = dict(part.split("=", 1) for part in first.splitlines()[0].split() if "=" in part)
    measured.pop("NodeName", None)
    if int(measured.get("CPUs", 1)) < slots:
        measured.update(CPUs=slots, Boards=1, SocketsPerBoard=1, CoresPerSocket=slots, ThreadsPerCore=1)
    return " ".join(f"{key}={value}" for key, value in measured.items())


@dataclass
class Cluster:
    """A started cluster: `env` holds what every SLURM command (submitit's too) needs."""

    folder: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    path: str = field(default_factory=lambda: os.environ["PATH"])  # where SLURM's programs are, at start
    kept: set[str] = field(default_factory=set)  # jobs a test left running on purpose, for a later test

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf), "PATH": f"{self.folder / 'bin'}{os.pathsep}{self.path}"}

    def command(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """A SLURM command (scontrol, squeue, scancel, ...) against this cluster."""
        return subprocess.run(
            list(args), env={**os.environ, **self.env}, capture_output=True, text=True, check=check, timeout=timeout
        )

    def jobs(self) -> list[str]:
        """The ids of the jobs the cluster still holds (pending, running, or requeued), an array's tasks one by one."""
        listed = self.command("squeue", "-h", "--array", "-o", "%i", check=False).stdout
        return [line.strip() for line in listed.splitlines() if line.strip()]

    def wait_idle(self, timeout: float = 30) -> None:
        """Until the node takes jobs."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}; see {self.folder / 'log'}")
            state = self.command("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.1)
        raise RuntimeError(f"the node is not idle after {timeout} s (sinfo: {state!r}); see {self.folder / 'log'}")


def wait_for(condition: Callable[[], object], timeout: float = 600.0, what: str = "") -> None:
    """Until `condition()` holds; an AssertionError naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def start(folder: Path | None = None, *, partition: str = PARTITION) -> Cluster:
    """Write the configuration into `folder` (a new temporary one by default) and start munged, slurmctld, slurmd."""
    absent = missing()
    if absent:
        raise FileNotFoundError(f"{', '.join(absent)} not found ({MISSING_HINT})")
    folder = Path(folder or tempfile.mkdtemp(prefix="lighter-slurm-"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # munged wants its socket's folders reachable by everyone
    for sub in ("munge", "state", "spool", "log", "bin"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "munge").chmod(0o711)
    key = folder / "munge" / "munge.key"
    key.write_bytes(secrets.token_bytes(128))
    key.chmod(0o600)
    host = socket.gethostname().split(".")[0]
    text = CONF.format(
        host=host,
        folder=folder,
        user=os.environ.get("USER") or "root",
        ctld_port=_free_port(),
        slurmd_port=_free_port(),
        node=_node_line(),
        partition=partition,
        first_job=secrets.randbelow(900_000) + 1000,
    )
    (folder / "slurm.conf").write_text(text)
    sacct = folder / "bin" / "sacct"
    sacct.write_text(SACCT.format(python=sys.executable))
    sacct.chmod(0o755)

    cluster = Cluster(folder)
    munge = folder / "munge"
    cluster.processes.append(
        subprocess.Popen(
            [
                _program("munged"),
                "--foreground",
                f"--key-file={key}",
                f"--socket={munge / 'munge.socket'}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={munge / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(folder / "log" / "munged.out").open("w"),
            start_new_session=True,
        )
    )
    end = time.monotonic() + 10
    while not (munge / "munge.socket").exists() and cluster.processes[0].poll() is None and time.monotonic() < end:
        time.sleep(0.02)
    env = {**os.environ, **cluster.env}
    for daemon, extra in (("slurmctld", ["-i"]), ("slurmd", ["-N", host])):
        log = (folder / "log" / f"{daemon}.out").open("w")
        cluster.processes.append(
            subprocess.Popen(
                [_program(daemon), "-D", "-f", str(cluster.conf), *extra],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for the tests does not stop the cluster under them
            )
        )
    try:
        cluster.wait_idle()
    except Exception:
        stop(cluster)
        raise
    return cluster


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie left to PID 1 counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _stop_pid(pid: int | None, timeout: float = 10) -> None:
    if pid is None or _gone(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + timeout
    while not _gone(pid) and time.monotonic() < end:
        time.sleep(0.05)
    if not _gone(pid):
        os.kill(pid, signal.SIGKILL)


def stop(cluster: Cluster | Path) -> None:
    """Cancel every job (a requeued job outlives what submitted it), shut the daemons down, stop munged; reap."""
    if not isinstance(cluster, Cluster):
        cluster = Cluster(Path(cluster))
    if cluster.conf.is_file():
        cluster.command("scancel", "--full", "--user", os.environ.get("USER") or "root", check=False)
        end = time.monotonic() + 15
        while cluster.jobs() and time.monotonic() < end:
            time.sleep(0.2)
        cluster.command("scontrol", "shutdown", check=False)
    for daemon in DAEMONS:  # by their pid files: an earlier `start` command's daemons are not our children
        _stop_pid(_pid(cluster.folder / f"{daemon}.pid"), timeout=15)
    _stop_pid(_pid(cluster.folder / "munge" / "munged.pid"))
    for proc in cluster.processes:  # reap our own
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _reap_steps(cluster.folder)


def _reap_steps(folder: Path) -> None:
    """Kill what a job left behind: a process of a job (SLURM_JOB_ID) of this cluster (its SLURM_CONF) still running."""
    marker = f"SLURM_CONF={folder / 'slurm.conf'}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            if marker in environ and any(v.startswith(b"SLURM_JOB_ID=") for v in environ):
                _stop_pid(int(proc.name), timeout=5)
        except (OSError, PermissionError):
            continue


def main(argv: list[str]) -> int:
    usage = "usage: python tests/slurm_cluster.py start [FOLDER] | env FOLDER | stop FOLDER"
    if not argv or argv[0] not in ("start", "env", "stop") or (argv[0] != "start" and len(argv) != 2):
        print(usage, file=sys.stderr)
        return 2
    if argv[0] == "start":
        began = time.perf_counter()
        cluster = start(Path(argv[1]) if len(argv) > 1 else None)
        for proc in cluster.processes:
            proc.returncode = 0  # keep running after this command: `stop FOLDER` ends them by their pid files
        print(
            f"# single-node SLURM up in {time.perf_counter() - began:.1f} s; stop: {sys.argv[0]} stop {cluster.folder}"
        )
    else:
        cluster = Cluster(Path(argv[1]))
    if argv[0] == "stop":
        stop(cluster)
        return 0
    print(f"export SLURM_CONF={cluster.env['SLURM_CONF']}")
    print(f'export PATH={cluster.folder / "bin"}:"$PATH"')
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
