"""Shared helpers: a tiny `project` package and config written to tmp_path, CSV logs, and the CLI.

Every run is real: Lightning's Trainer on CPU, MONAI's ConfigParser, torchmetrics. The data are a few random
tensors, so a whole fit takes about a second. The `cli` fixture calls the real entry point in this process;
`run_cli` starts a process, for the tests where the process itself is the point (signals, kills, imports, DDP).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import slurm_cluster
import yaml
from filelock import FileLock
from trackers import new_mlflow_store

import lighter.cli
from lighter.quiet import HIDDEN_LOG_LINES

REPO = Path(__file__).resolve().parent.parent

# One thread per test process: the tensors here are tiny, the machine has 2 cores and pytest-xdist runs a worker on
# each. Set before torch is imported, so torch and every process a test starts read it (a test may still unset it).
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The `project` package the configs import (`project: ...`). `probe` holds what tests look at after a run:
# module state is fresh for every run because lighter re-imports `project` each time.
PROJECT_FILES = {
    "__init__.py": '"""A tiny project for lighter\'s tests."""\n',
    "data.py": '''
        """Few, small, seeded samples in every shape a batch can take."""

        import torch
        from torch.utils.data import Dataset, TensorDataset


        def _tensors(n, features, classes, seed):
            g = torch.Generator().manual_seed(seed)
            return torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)


        def pairs(n=16, features=4, classes=3, seed=0):
            """(x, y) batches."""
            return TensorDataset(*_tensors(n, features, classes, seed))


        def inputs(n=16, features=4, seed=0):
            """Bare inputs, as predict's default batch adapter expects: a tensor is a map-style dataset."""
            return _tensors(n, features, 1, seed)[0]


        class Samples(Dataset):
            """(x, y, "sample-i") tuples, or dicts {"image", "label", "name"} with `as_dict`."""

            def __init__(self, n=16, features=4, classes=3, seed=0, as_dict=False):
                self.x, self.y = _tensors(n, features, classes, seed)
                self.as_dict = as_dict

            def __len__(self):
                return len(self.y)

            def __getitem__(self, i):
                if self.as_dict:
                    return {"image": self.x[i], "label": self.y[i], "name": f"sample-{i}"}
                return self.x[i], self.y[i], f"sample-{i}"


        def images(n=8, size=8, seed=0):
            """(1xSxS image, SxS mask) pairs for a per-pixel model."""
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(n, 1, size, size, generator=g)
            return TensorDataset(x, (x[:, 0] > 0).long())
    ''',
    "probe.py": '''
        """Things a test inspects after a run, or parts that must never be built."""

        import gc

        import pytorch_lightning as pl
        import torch
        from torch import nn

        FROZEN = []  # objects kept from the garbage collector when each loop started
        CAPTURED = {}  # stage -> (trainer, system), filled at teardown
        OUTPUTS = {}  # mode -> what each step returned
        CALLS = []  # what models were called with
        BUILT = []  # names of `counted` calls, in call order


        class Capture(pl.Callback):
            def on_fit_start(self, trainer, pl_module):
                FROZEN.append(gc.get_freeze_count())

            def teardown(self, trainer, pl_module, stage):
                CAPTURED[stage] = (trainer, pl_module)

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                OUTPUTS.setdefault("train", []).append(outputs)

            def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
                OUTPUTS.setdefault("val", []).append(outputs)

            def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
                OUTPUTS.setdefault("test", []).append(outputs)

            def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
                OUTPUTS.setdefault("predict", []).append(outputs)


        class Boom:
            """A part the stage must not build."""

            def __init__(self, *args, name="part", **kwargs):
                raise RuntimeError(f"{name} was built")


        def counted(name, value=None):
            BUILT.append(name)
            return value


        class _Recording(nn.Linear):
            def record(self, x, **kwargs):
                CALLS.append({"training": self.training, **kwargs})
                return super().forward(x)


        class EpochModel(_Recording):
            def forward(self, x, epoch):
                return self.record(x, epoch=epoch)


        class StepModel(_Recording):
            def forward(self, x, step):
                return self.record(x, step=step)


        class EpochStepModel(_Recording):
            def forward(self, x, epoch, step):
                return self.record(x, epoch=epoch, step=step)


        class PixelNet(nn.Module):
            """A 1x1 conv: works on any image size, and records the spatial size it was called with."""

            def __init__(self, classes=2):
                super().__init__()
                self.conv = nn.Conv2d(1, classes, kernel_size=1)

            def forward(self, x):
                CALLS.append({"training": self.training, "size": tuple(x.shape[-2:])})
                return self.conv(x)


        class SplitLoss(nn.Module):
            """Cross-entropy plus a small L2 term on the logits, returned as a dict with `total`."""

            def __init__(self):
                super().__init__()
                self.ce = nn.CrossEntropyLoss()

            def forward(self, pred, target):
                ce = self.ce(pred, target)
                l2 = 0.01 * pred.pow(2).mean()
                return {"total": ce + l2, "ce": ce, "l2": l2}


        def argmax(t):
            return torch.argmax(t, dim=1)
    ''',
}


def write_project(root: Path, name: str = "project") -> Path:
    """Write the test `project` package under `root` and return its directory."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for filename, text in PROJECT_FILES.items():
        (folder / filename).write_text(textwrap.dedent(text).lstrip())
    return folder


def write_yaml(path: Path, data: dict[str, Any] | str) -> Path:
    """Write a config as YAML (a dict) or verbatim (a str) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def loader(dataset: dict[str, Any], batch_size: int = 8, **kwargs: Any) -> dict[str, Any]:
    return {"_target_": "torch.utils.data.DataLoader", "dataset": dataset, "batch_size": batch_size, **kwargs}


def classifier_config(tmp_path: Path, *, epochs: int = 1) -> dict[str, Any]:
    """A complete config for a 4-feature, 3-class Linear classifier with every stage's data and a CSV logger.

    Writes the `project` package into tmp_path; `project` in the config is its absolute path.
    """
    project = write_project(tmp_path)
    pairs = {"_target_": "project.data.pairs"}
    return {
        "project": str(project),
        "trainer": {
            "_target_": "pytorch_lightning.Trainer",
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": epochs,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "enable_checkpointing": False,
            "default_root_dir": str(tmp_path),
            "logger": {
                "_target_": "pytorch_lightning.loggers.CSVLogger",
                "save_dir": str(tmp_path),
                "name": "logs",
            },
            "callbacks": [{"_target_": "project.probe.Capture"}],
        },
        "system": {
            "_target_": "lighter.System",
            "model": {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 3},
            "criterion": {"_target_": "torch.nn.CrossEntropyLoss"},
            "optimizer": {"_target_": "torch.optim.SGD", "params": "$@system::model.parameters()", "lr": 0.1},
            "dataloaders": {
                "train": loader(pairs, shuffle=True),
                "val": loader({**pairs, "seed": 1}),
                "test": loader({**pairs, "seed": 2}),
                "predict": loader({"_target_": "project.data.inputs", "seed": 3}),
            },
        },
    }


def accuracy(**kwargs: Any) -> dict[str, Any]:
    return {"_target_": "torchmetrics.Accuracy", "task": "multiclass", "num_classes": 3, **kwargs}


def read_metrics(save_dir: Path, name: str = "logs") -> list[dict[str, float]]:
    """Rows of the last run's metrics.csv (the CSV logger's newest version), empty cells dropped, values as floats."""
    versions = sorted((save_dir / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    path = versions[-1] / "metrics.csv"
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def logged(rows: list[dict[str, float]], name: str) -> list[float]:
    """Every value logged under `name`, in order."""
    return [row[name] for row in rows if name in row]


def captured(stage: str) -> tuple[Any, Any]:
    """(trainer, system) of the last run's `stage`, as the Capture callback saw them at teardown."""
    return sys.modules["project.probe"].CAPTURED[stage]


def probe() -> Any:
    """The `project.probe` module of the last run."""
    return sys.modules["project.probe"]


CLI_TIMEOUT = 180


def run_cli(
    args: list[str], cwd: Path, *, console_script: bool = False, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run `python -m lighter ARGS` (or the `lighter` console script) in a subprocess and capture its output."""
    command = [str(Path(sys.executable).parent / "lighter")] if console_script else [sys.executable, "-m", "lighter"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LIGHTER_DEBUG", None)
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass(frozen=True)
class CliResult:
    """What a `lighter` command left: its exit status and everything it printed (the names of CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


class _CurrentStream(io.TextIOBase):
    """Writes to whatever `sys.<name>` is at the moment, so a handler made during one capture serves the next."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        return getattr(sys, self.name).write(text)

    def flush(self) -> None:
        getattr(sys, self.name).flush()


_STDERR = _CurrentStream("stderr")
# Python's own warnings filters, as a new process starts with them (pytest changes them only around each test).
_PROCESS_WARNING_FILTERS = list(warnings.filters)
# Signals whose handlers a run installs (lighter's graceful stop, Lightning's SLURM connector) and must give back.
_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2) if s is not None)


# Loggers lighter adds a filter to in each run (lighter.quiet's hidden lines), made here so that their state is
# saved and restored even when the first run is the one that imports Lightning (or submitit).
_FILTERED_LOGGERS = tuple(name for names, _start, _why in HIDDEN_LOG_LINES for name in names)


def _loggers() -> list[logging.Logger]:
    for name in _FILTERED_LOGGERS:
        logging.getLogger(name)
    known = logging.Logger.manager.loggerDict.values()
    return [logging.getLogger(), *(x for x in known if isinstance(x, logging.Logger))]


def _follow_stderr() -> None:
    """Point every plain stream handler at the current stderr: one made while some capture was active (here or by
    capsys in a test that called `main` itself) holds that capture's stream, closed by now."""
    for x in _loggers():
        for handler in x.handlers:
            if type(handler) is logging.StreamHandler and handler.stream not in (_STDERR, sys.stdout, sys.__stdout__):
                with handler.lock:  # setStream would flush the old stream, which may be closed
                    handler.stream = _STDERR


@contextlib.contextmanager
def _fresh_process_logging() -> Iterator[None]:
    """Logging as a new `lighter` process has it: no root handlers (pytest's live in this process), so lighter's
    and Lightning's loggers print to stderr themselves; every logger's state is given back afterwards."""
    saved = {x: (x.level, x.propagate, x.disabled, list(x.handlers), list(x.filters)) for x in _loggers()}
    root = logging.getLogger()
    root.handlers = []
    # A new process has no filter on those loggers; a test that called `main` itself (outside this
    # fixture) left lighter.quiet's there, and a `--verbose` run would then still hide the notices.
    for name in _FILTERED_LOGGERS:
        logging.getLogger(name).filters = []
    # Modules imported at collection, under pytest's root handlers, added none of their own: add what a fresh
    # import would have (lighter.utils.log: INFO on `lighter`; Lightning's packages: INFO, not propagated).
    for name in ("lighter", "pytorch_lightning", "lightning_fabric"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler(_STDERR)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
            logger.propagate = name == "lighter"
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    _follow_stderr()
    try:
        yield
    finally:
        _follow_stderr()
        for x in _loggers():
            if x in saved:
                x.level, x.propagate, x.disabled, handlers, filters = saved[x]
                x.handlers, x.filters = handlers, filters


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _fresh_process_warnings() -> Iterator[None]:
    """Warnings as a new process shows them: Python's default filters, printed to stderr (not recorded by pytest);
    the filters lighter or Lightning add during the call are dropped afterwards."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.filters.extend(_PROCESS_WARNING_FILTERS)
        warnings.showwarning = _show_warning
        yield


def _end_process_state() -> None:
    """What the end of a `lighter` process ends and a later command in this process must not inherit."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()  # W&B keeps one run per process until it exits; WandbLogger would reuse it


IN_PROCESS_TIMEOUT = 600  # seconds; a command that hangs fails its test instead of stopping the suite


def _timed_out(signum: int, frame: Any) -> None:
    raise TimeoutError(f"the command ran longer than {IN_PROCESS_TIMEOUT} s")


def run_in_process(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
    """`lighter ARGS` through the real entry point `lighter.cli.main`, in this process, as a new process would run
    it: its exit status (an uncaught exception prints its traceback and gives 1, as Python does) and its output.
    The working directory, environment, argv, signal handlers, warnings filters and logging are restored after.
    A command still running after IN_PROCESS_TIMEOUT seconds is stopped by SIGALRM (a TimeoutError, exit 1)."""
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd, saved_argv = dict(os.environ), Path.cwd(), list(sys.argv)
    saved_signals = {s: signal.getsignal(s) for s in (*_SIGNALS, signal.SIGALRM)}
    code = 0
    try:
        os.environ.pop("LIGHTER_DEBUG", None)
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = ["lighter", *args]
        with (
            _fresh_process_warnings(),
            _fresh_process_logging(),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                signal.signal(signal.SIGALRM, _timed_out)
                signal.alarm(IN_PROCESS_TIMEOUT)
                lighter.cli.main(list(args))
            except SystemExit as stop:
                if isinstance(stop.code, int | None):
                    code = stop.code or 0
                else:
                    print(stop.code, file=sys.stderr)
                    code = 1
            except Exception:
                traceback.print_exc()
                code = 1
            _end_process_state()
    finally:
        signal.alarm(0)
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for s, handler in saved_signals.items():
            signal.signal(s, handler)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliResult]:
    """`cli(["fit", "config.yaml", ...], cwd=..., env=...)`: the `lighter` command in this process (`run_in_process`).

    Use it for every CLI test that is not about the process itself; those use `run_cli`. Session-scoped, as it
    holds no state: hypothesis' @given tests can take it.
    """
    return run_in_process


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store made once per suite run, shared by its xdist workers: a test copies it to where
    its `tracking_uri` points and gets a real, new store without paying MLflow's schema migrations again."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # popen-gwN's parent: this run's folder, the same for every worker
    template = shared / "mlflow-template.db"
    with FileLock(f"{template}.lock"):
        if not template.exists():
            new_mlflow_store(template)
    return template


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    """`classifier_config` for this test's tmp_path."""
    return classifier_config(tmp_path)


_SPLIT_GROUP = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)  # after pytest-xdist's, which appends each test's xdist_group to its id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` run first. pytest-xdist hands each worker a few tests ahead in collection order (a group
    as one unit, the largest groups first): with the long ones at the front, the suite ends on short tests spread over
    both workers, not on one worker finishing a long test it was handed early while the other waits.

    Under `--dist loadgroup` a group stays on one worker only if its name reached the test's id; where it did not
    (pytest 9.2 with pytest-xdist 3.8), each test of a group fails saying so instead of, say, starting a second SLURM
    cluster beside the first."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if getattr(config.option, "loadgroup", False):  # set in pytest-xdist's workers under --dist loadgroup
        for item in items:
            if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
                item.stash[_SPLIT_GROUP] = (
                    f"--dist loadgroup split this test's xdist_group over the workers: pytest {pytest.__version__} "
                    "keeps the group's name out of the test's id. Install pytest<9.2 (the dev extra's pin)."
                )


@pytest.fixture(autouse=True)
def _one_worker_per_group(request: pytest.FixtureRequest) -> None:
    if _SPLIT_GROUP in request.node.stash:
        pytest.fail(request.node.stash[_SPLIT_GROUP], pytrace=False)


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lightning writes `lightning_logs/` and checkpoints under the cwd by default; keep them in tmp_path.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def cluster() -> Iterator[slurm_cluster.Cluster]:
    """The session's single-node SLURM (tests/slurm_cluster.py), started once for every SLURM test module (they
    share the xdist group `slurm`, so one worker runs them all); a skip where it cannot start, a failure under
    CI=true (where `make test` installs slurm-wlm and munge)."""
    problem = None
    if slurm_cluster.missing():
        problem = f"{', '.join(slurm_cluster.missing())} not found ({slurm_cluster.MISSING_HINT})"
    elif os.geteuid() != 0:
        problem = "the SLURM tests start slurmd, which needs root"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"SLURM tests cannot run under CI=true: {problem}")
        pytest.skip(problem)
    started = slurm_cluster.start()
    try:
        yield started
    finally:
        slurm_cluster.stop(started)
        shutil.rmtree(started.folder, ignore_errors=True)  # its state, spool and logs: nothing to keep after the suite


@pytest.fixture
def slurm(cluster: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[slurm_cluster.Cluster]:
    """The cluster, with SLURM_CONF and its `sacct` in this test's environment (submitit's commands inherit them);
    the jobs a test leaves are cancelled after it, so the next test finds the node free. Jobs a test submits
    on purpose for a later one (`Cluster.keep`) stay."""
    for key, value in cluster.env.items():
        monkeypatch.setenv(key, value)
    yield cluster
    left = [job for job in cluster.jobs() if job.split("_")[0] not in cluster.kept]
    if left:
        cluster.command("scancel", *{job.split("_")[0] for job in left}, check=False)
        slurm_cluster.wait_for(lambda: not set(left) & set(cluster.jobs()), what="the test's jobs to go")
