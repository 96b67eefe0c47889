"""Runs on disk: find them under a folder, read their status and sweep axes, keep their `epoch_log.csv` fresh.

A run is a directory holding `epoch_log.csv`, `batch_log.csv` (lighter's `BatchLog` callback) or a Lightning
CSVLogger `metrics.csv`; nothing else about it needs to come from lighter. A batch-logged run gets an
`epoch_log.csv` beside its batch log the first time it is read, stamped with the batch log's modification time, and
regenerated whenever the batch log's size, mtime or ctime differ from those it was made from (kept in
`.epoch_log.key`): an edit is never served stale, even one whose mtime was put back. It is written to a temporary
file in the same directory and renamed into place, so a reader sees the old file or the new one, never half of
one. Where the run's folder is read-only the reduction is served from memory instead.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
import stat
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pandas as pd
import yaml

from lighter.config.loader import lookup
from lighter.dashboard.reduce import (
    DROPPED,
    KEYS,
    N_BATCHES,
    X_COLUMNS,
    epoch_table,
    lightning_column,
    lightning_epoch_table,
    reached,
)
from lighter.names import BATCH_LOG_FILE, CHECKPOINTS_DIR, CONFIG_FILE, METRICS_FILE, RUN_FILE, TRIAL_FILE, Status
from lighter.run.status import run_status, trial_status
from lighter.tracking.secrets import SECRET_MARKER, is_secret_key
from lighter.utils.atomic import replacing
from lighter.utils.numeric import is_number

EPOCH_LOG = "epoch_log.csv"
EPOCH_KEY = ".epoch_log.key"  # the signature of the batch log that epoch_log.csv was made from
BATCH_LOG = BATCH_LOG_FILE
LIGHTNING_LOG = METRICS_FILE
LOGS = (EPOCH_LOG, BATCH_LOG, LIGHTNING_LOG)
SOURCES = (BATCH_LOG, EPOCH_LOG, LIGHTNING_LOG)  # where a run's epochs come from, first found wins
RECORDS = (TRIAL_FILE, RUN_FILE)
SEED = "seed"
SKIPPED_DIRS = (CHECKPOINTS_DIR, "__pycache__")  # never hold a run, and checkpoints can be many
NOT_METRICS = frozenset((*KEYS, *DROPPED, *X_COLUMNS, N_BATCHES))
SAMPLED_LINES = 20  # rows read to tell a text column (a note, a tag) from a metric
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UnknownRun(LookupError):
    """No run at that id."""


class RefusedPath(ValueError):
    """A run id that would leave the served folder."""


@dataclass
class Run:
    """What `/api/runs` lists for one run."""

    id: str
    source: str | None  # where its epochs come from: batch_log.csv (via epoch_log.csv), epoch_log.csv, metrics.csv
    metrics: list[str]
    version: str  # changes whenever a file the run is read from changes
    status: str | None = None
    axes: dict[str, Any] = field(default_factory=dict)
    leaf: str | None = None
    trial: str | None = None
    in_sweep: bool | None = None
    leaf_mode: str | None = None  # sweep or experiment
    # Every sweep axis of the folder (seed included) with this trial's value, from its axes or its config.yaml: an
    # experiment that repeats a sweep's setting over seeds has the same values apart from its seed.
    values: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # a record that could not be read

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


def read_batch_log(path: Path) -> pd.DataFrame:
    """A batch log as a table, up to its last complete line: the run may be appending to it right now."""
    with path.open("rb") as f:
        complete = _complete_lines(f)
        if complete == 0:
            return pd.DataFrame(columns=list(KEYS))
        with warnings.catch_warnings():  # a column of numbers and text is ignored below; no need to warn
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(io.BufferedReader(_Prefix(f, complete), buffer_size=1 << 20))


def _complete_lines(f) -> int:
    """How many bytes of the open file end with its last newline."""
    end = os.fstat(f.fileno()).st_size
    while end > 0:
        start = max(0, end - (1 << 16))
        f.seek(start)
        newline = f.read(end - start).rfind(b"\n")
        if newline >= 0:
            f.seek(0)
            return start + newline + 1
        end = start
    return 0


class _Prefix(io.RawIOBase):
    """The first `size` bytes of a file: pandas reads straight from disk, and stops where the last line ended."""

    def __init__(self, f, size: int):
        self._f, self._left = f, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._f.readinto(memoryview(buffer)[: min(len(buffer), self._left)]) if self._left > 0 else 0
        self._left -= n
        return n


def write_atomic(table: pd.DataFrame, path: Path, mtime_ns: int | None = None) -> None:
    """Write a CSV to a temporary file beside `path`, then rename it into place."""
    with replacing(path, durable=False, mtime_ns=mtime_ns, newline="") as f:  # regenerable: no fsync
        table.to_csv(f, index=False)


def signature(st: os.stat_result) -> str:
    """What identifies a file's content cheaply: size, mtime and ctime (which no one can set back), in ns."""
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def _read_key(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # never through a link
    except OSError:
        return None
    with os.fdopen(fd) as f:
        return f.read(200)


def refresh_epoch_log(run_dir: Path) -> pd.DataFrame:
    """The run's epoch table, regenerating `epoch_log.csv` unless it was made from the batch log as it is now."""
    batch, epoch, key = run_dir / BATCH_LOG, run_dir / EPOCH_LOG, run_dir / EPOCH_KEY
    source = batch.stat()  # taken before reading: lines appended meanwhile change it again
    with contextlib.suppress(FileNotFoundError):
        cached = epoch.lstat()  # a link is never read: it could point out of the served folder
        if (
            stat.S_ISREG(cached.st_mode)
            and cached.st_mtime_ns == source.st_mtime_ns
            and _read_key(key) == signature(source)
        ):
            return pd.read_csv(epoch)
    table = epoch_table(read_batch_log(batch))
    if not epoch.is_symlink():  # someone's link stays as it is
        with contextlib.suppress(OSError):  # a read-only results folder: serve the reduction, uncached on disk
            write_atomic(table, epoch, mtime_ns=source.st_mtime_ns)
            with replacing(key, durable=False) as f:  # after the log: a key never vouches for an older one
                f.write(signature(source))
    return table


class RunStore:
    """The runs under one folder. Thread-safe; every answer reflects the files as they are now."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self._runs: dict[str, tuple[tuple, Run]] = {}
        self._epochs: dict[str, tuple[tuple, bytes, dict]] = {}
        self._configs: dict[str, tuple[tuple, dict]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # Discovery -------------------------------------------------------------------------------------------------
    def runs(self) -> list[Run]:
        """Every run under the root, by id; only runs whose files changed since the last call are read again."""
        found = []
        for run_dir, files in self._walk():  # paths stay strings unless a run is read
            run_id = self._id(run_dir)
            stamp = self._stamp(files)
            cached = self._runs.get(run_id)
            # A run's process can die without a file changing: a `running` one is read again, to tell it.
            if cached is None or cached[0] != stamp or cached[1].status == Status.RUNNING:
                cached = (stamp, self._read_run(run_id, Path(run_dir), files, stamp))
                self._runs[run_id] = cached
            found.append(cached[1])
        keys = sorted({key for run in found for key in run.axes} | {SEED})
        for run in found:
            if run.trial is not None:
                config = self._config(run)
                run.values = {key: run.axes[key] if key in run.axes else _value_at(config, key) for key in keys}
        return sorted(found, key=lambda run: run.id)

    def _config(self, run: Run) -> dict:
        """A trial's config.yaml, read once per change of its files; {} when it has none or it cannot be read."""
        stamp, _ = self._runs[run.id]
        cached = self._configs.get(run.id)
        if cached is None or cached[0] != stamp:
            path, config = self.root / run.id / CONFIG_FILE, {}
            if self._inside(path):
                with contextlib.suppress(OSError, yaml.YAMLError):
                    config = yaml.load(path.read_text(), Loader=_Loader)
            cached = (stamp, config if isinstance(config, dict) else {})
            self._configs[run.id] = cached
        return cached[1]

    def _walk(self):
        """(run directory, {log or record name: stat}) for every run; a run's subfolders are not searched."""
        stack = [str(self.root)]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue  # unreadable or vanished meanwhile
            files = {e.name: e for e in entries if (e.name in LOGS or e.name in RECORDS) and self._inside(e)}
            if any(name in files for name in LOGS) or TRIAL_FILE in files:  # a pending trial has no log yet
                if BATCH_LOG in files:
                    files.pop(EPOCH_LOG, None)  # derived from the batch log: rewriting it is no change of the run
                yield folder, files
                continue
            stack.extend(
                e.path
                for e in entries
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".") and e.name not in SKIPPED_DIRS
            )

    def _inside(self, entry: os.DirEntry | Path) -> bool:
        """A file is read only if it is inside the root, also after following links: logs and records alike."""
        if not entry.is_symlink():
            return entry.is_file()
        real = Path(entry).resolve()
        return real.is_file() and real.is_relative_to(self.root)

    def _id(self, run_dir: str | Path) -> str:
        """The run's path below the root, with `/` (`.` for the root itself)."""
        root, run_dir = str(self.root), str(run_dir)
        return run_dir[len(root) + 1 :].replace(os.sep, "/") if run_dir != root else "."

    @staticmethod
    def _stamp(files: dict[str, os.DirEntry]) -> tuple:
        stamp = []
        for name, entry in sorted(files.items()):
            try:
                st = entry.stat()
            except OSError:
                continue
            stamp.append((name, signature(st)))
        return tuple(stamp)

    def _read_run(self, run_id: str, run_dir: Path, files: dict, stamp: tuple) -> Run:
        source = next((name for name in SOURCES if name in files), None)
        run = Run(
            id=run_id,
            source=source,
            metrics=_metric_columns(run_dir / source) if source else [],
            version=format(zlib.crc32(repr(stamp).encode()), "08x"),
        )
        record_dir, present = run_dir, {name for name in RECORDS if name in files}
        refused = [name for name in RECORDS if name not in files and (run_dir / name).is_symlink()]
        if refused:
            run.problem = f"{run_id}/{refused[0]}: a link to a file outside the served folder; not read"
        while not present and not refused and record_dir != self.root:
            record_dir = record_dir.parent  # a Lightning version_N folder inside a lighter run dir
            present = {name for name in RECORDS if self._inside(record_dir / name)}
        for name in RECORDS:
            path = record_dir / name
            if (name == RUN_FILE and run.status is not None) or name not in present:
                continue  # a trial's own status comes first; its run record is read only without one
            try:
                record = yaml.load(path.read_text(), Loader=_Loader) or {}
                if not isinstance(record, dict):
                    raise ValueError(f"expected a mapping, got {type(record).__name__}")
            except (OSError, ValueError, yaml.YAMLError) as err:
                run.problem = f"{path.relative_to(self.root)}: {type(err).__name__}: {err}".splitlines()[0]
                continue
            if run.status is None and isinstance(record.get("status"), str):
                run.status = _trial_status(record_dir, record) if name == TRIAL_FILE else run_status(record)
            if name == TRIAL_FILE:
                axes = record.get("axes")
                run.axes = {str(k): _shown(k, v) for k, v in axes.items()} if isinstance(axes, dict) else {}
                run.leaf, run.trial = record.get("leaf"), record.get("trial")
                run.in_sweep, run.leaf_mode = record.get("in_sweep"), record.get("mode")
        return run

    # Epochs ----------------------------------------------------------------------------------------------------
    def resolve(self, run_id: str) -> Path:
        """The directory of a run id; refuses ids that leave the root, unknown ids raise UnknownRun."""
        text = str(run_id)
        if "\x00" in text or PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute():
            raise RefusedPath(f"run id {text!r} is an absolute path; ids are paths relative to the served folder")
        if ".." in PurePosixPath(text.replace("\\", "/")).parts:
            raise RefusedPath(f"run id {text!r} contains '..'; ids are paths inside the served folder")
        path = (self.root / text).resolve()
        if not path.is_relative_to(self.root):
            raise RefusedPath(f"run id {text!r} is a link to a folder outside the served folder")
        if path.is_dir() and any(self._inside(path / name) for name in (*LOGS, TRIAL_FILE)):
            return path
        if path.is_dir() and any((path / name).is_file() for name in (*LOGS, TRIAL_FILE)):
            raise RefusedPath(f"run id {text!r}: its files are links to files outside the served folder")
        raise UnknownRun(f"no run {text!r} under {self.root}; GET /api/runs lists them")

    def _log(self, run_dir: Path, name: str) -> Path | None:
        path = run_dir / name
        return path if self._inside(path) else None

    def epochs(self, run_id: str) -> pd.DataFrame:
        """The run's rows, one per (epoch, mode)."""
        return pd.read_json(io.BytesIO(self.epochs_json(run_id)), orient="records")

    def epochs_json(self, run_id: str) -> bytes:
        """The run's rows as a JSON list of records (missing values are null), cached until its files change."""
        return self._cached(self.resolve(run_id))[1]

    def reached(self, run_id: str) -> dict[str, dict[str, Any]]:
        """What the run reached per `mode/metric` (`reduce.reached`), cached with its epochs."""
        return self._cached(self.resolve(run_id))[2]

    def _cached(self, run_dir: Path) -> tuple[tuple, bytes, dict]:
        key = self._id(run_dir)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # two requests for a changed run: one regenerates, the other reuses its result
            stamp = self._files_stamp(run_dir)
            cached = self._epochs.get(key)
            if cached is not None and cached[0] == stamp:
                return cached
            table = self._epoch_table(run_dir)
            metrics = self._log(run_dir, LIGHTNING_LOG)
            logged = read_batch_log(metrics) if metrics else None
            cached = (self._files_stamp(run_dir), table.to_json(orient="records").encode(), reached(table, logged))
            self._epochs[key] = cached
            return cached

    def _files_stamp(self, run_dir: Path) -> tuple:
        stamp = []
        for name in LOGS:
            with contextlib.suppress(OSError):
                st = (run_dir / name).stat()
                stamp.append((name, signature(st)))
        return tuple(stamp)

    def _epoch_table(self, run_dir: Path) -> pd.DataFrame:
        if self._log(run_dir, BATCH_LOG):
            return refresh_epoch_log(run_dir)
        if path := self._log(run_dir, EPOCH_LOG):
            return pd.read_csv(path)
        if path := self._log(run_dir, LIGHTNING_LOG):
            return lightning_epoch_table(read_batch_log(path))
        return pd.DataFrame(columns=list(KEYS))  # a trial that has not started


def _value_at(config: dict, key: str) -> Any:
    """The plain value at a `::` key path of a config, masked if secret; None where there is none."""
    node = lookup(config, key, None)
    return _shown(key, node) if isinstance(node, str | int | float | bool) else None


def _shown(key: Any, value: Any) -> Any:
    """An axis value as the page may show it: masked under a secret-named key, as lighter masks it everywhere."""
    return SECRET_MARKER if is_secret_key(key) else value


def _trial_status(trial_dir: Path, record: dict) -> str:
    """The status `lighter sweep status` shows (lighter.run.status): stale, interrupted, no longer complete."""
    try:
        return trial_status(trial_dir, record).value
    except (ValueError, yaml.YAMLError):  # a run.yaml that could not be read is reported by its own entry
        return str(record["status"])  # a status this lighter does not know: shown as written


def _metric_columns(path: Path) -> list[str]:
    """The metrics a log offers: its numeric columns, judged from the header and the first `SAMPLED_LINES` rows."""
    try:
        with path.open(newline="") as f:
            rows = list(itertools.islice(csv.reader(f), SAMPLED_LINES + 1))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []
    if not rows:
        return []
    header, body = rows[0], [row for row in rows[1:] if len(row) == len(rows[0])]
    text = {c for i, c in enumerate(header) if any(row[i] and not is_number(row[i]) for row in body)}
    columns = [c for c in header if c and c not in text]  # `note`, a tag: text, not a metric
    if path.name == LIGHTNING_LOG:
        names = [lightning_column(c)[1] for c in columns if c not in ("epoch", "step")]
        return list(dict.fromkeys(names))
    return [c for c in columns if c not in NOT_METRICS]
