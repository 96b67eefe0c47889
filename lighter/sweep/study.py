"""A searched leaf's Optuna study: its storage, sampler and pruner, and its trials as trial directories.

The study is the state of the search. By default it is an Optuna journal file, `study.journal`, in the leaf's output
next to its trials (nothing to start; safe for several processes on one machine or a shared file system); a
`storage:` URL in the `launcher:` block (`postgresql+psycopg://user@host/db`) puts it in a database for searches
that span machines. Study trial N is `trial_NNN`: its `config.yaml` holds the values the sampler chose.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from lighter.errors import ConfigError
from lighter.names import Status
from lighter.run.files import dump, load
from lighter.sweep.axes import LAUNCHER_KEY
from lighter.sweep.config_text import ConfigText
from lighter.sweep.distributions import from_optuna, to_optuna
from lighter.sweep.expand import LeafPlan, create_trial, leaf_out
from lighter.sweep.search_block import Search
from lighter.sweep.trial import Trial, config_hash, trial_name
from lighter.tracking.profiles import chosen, find_profile

STUDY_FILE = "study.journal"
VARS_KEY, PASSWORD_KEY = "vars", "storage_password"  # in a profile: the database password, kept out of the output
SEARCH_ATTR = "lighter_search"  # the study's copy of the `search:` block, for trials' pruning callbacks
UNWRITTEN_SECONDS = 60.0  # a running study trial this old without a directory lost its runner before it wrote one
REASON_ATTR = "lighter_reason"  # why lighter ended a trial itself (over the budget, nothing logged)
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)  # what the budget counts
# A trial's status in trial.yaml -> the state its study trial ends with (others stay RUNNING: it is to continue).
ENDINGS = {Status.DONE: TrialState.COMPLETE, Status.PRUNED: TrialState.PRUNED, Status.FAILED: TrialState.FAIL}

optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is the runner's to print


def default_storage(leaf_dir: Path) -> str:
    return str(Path(leaf_dir) / STUDY_FILE)


def storage(url: str) -> optuna.storages.BaseStorage:
    """A database URL (`sqlite:///...`, `postgresql+psycopg://...`; its password from the profile) or the path of a
    journal file."""
    if "://" in url:
        return optuna.storages.RDBStorage(with_password(url), engine_kwargs={"pool_pre_ping": True})
    return JournalStorage(JournalFileBackend(url))


def with_password(url: str) -> str:
    """`url` with the password of the profile (`vars: {storage_password: ...}` in the profile that LIGHTER_PROFILE
    names: `vars` merges into a trial's config as any profile's values do, masked where they are recorded), which is
    never written where the URL is; unchanged without one."""
    name = chosen(None)
    if name is None:
        return url
    data = load(find_profile(name))
    block = data.get(VARS_KEY) if isinstance(data, dict) else None
    password = block.get(PASSWORD_KEY) if isinstance(block, dict) else None
    if password is None:
        return url
    return make_url(url).set(password=str(password)).render_as_string(hide_password=False)


def check_url(url: str, where: str) -> str:
    """A storage URL as the shared config may hold it: one with a password is refused (it would be recorded)."""
    if "://" in url and make_url(url).password is not None:
        raise ConfigError(
            f"{where}: the storage URL holds a password, which would be written into every trial's record",
            key=f"{LAUNCHER_KEY}::storage",
            suggestion=f"Remove it from the URL and put it in your profile: `{VARS_KEY}: {{{PASSWORD_KEY}: ...}}` "
            "in ~/.config/lighter/profiles/NAME.yaml, with LIGHTER_PROFILE=NAME.",
        )
    return url


WORKER_SEED_STEP = 1_000_003  # a prime: SLURM workers opening the study at once draw from seeds far apart


def sampler(search: Search, seen: int = 0, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The search's sampler; its seed moves on by the trials the study has, so a continued search draws new values,
    and by the worker's index, so workers that open the study at the same moment do not propose the same values."""
    seed = None if search.seed is None else search.seed + seen + WORKER_SEED_STEP * worker
    startup = {} if search.startup_trials is None else {"n_startup_trials": search.startup_trials}
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **startup)
    if search.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, **startup)
    if search.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, **startup)
    raise ValueError(f"no sampler {search.sampler!r}")


PRUNERS = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
}


def pruner(name: str, args: dict[str, Any]) -> optuna.pruners.BasePruner:
    """Optuna's pruner `name` with the arguments written under `search::pruner` (TypeError/ValueError if wrong)."""
    return PRUNERS[name](**args)


def search_of(study: optuna.Study) -> Search:
    """The `search:` block the study was created with."""
    return Search(**study.user_attrs[SEARCH_ATTR])


@dataclass
class LeafStudy:
    """A searched leaf's study, opened by the runner: asks new trials, writes their directories, tells their ends."""

    plan: LeafPlan
    leaf_dir: Path
    url: str
    study: optuna.Study
    _text: tuple[tuple[str, ...], ConfigText] | None = None

    @property
    def search(self) -> Search:
        assert self.plan.search is not None
        return self.plan.search

    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def _reason(self, trial_id: int, reason: str) -> None:
        """Why lighter ended a trial itself, kept on the study trial (`sweep results` reads it)."""
        optuna.trial.Trial(self.study, trial_id).set_user_attr(REASON_ATTR, reason)

    def counted(self) -> int:
        return len(self.trials(COUNTED))

    def full(self) -> bool:
        """The budget is taken: by complete and pruned trials, and running ones (which may still complete)."""
        return len(self.trials((*COUNTED, TrialState.RUNNING, TrialState.WAITING))) >= self.search.trials

    def ask(self) -> Path | None:
        """A new trial's directory, or None when the budget is taken."""
        if self.full():
            return None
        axes = self.plan.axes
        trial = self.study.ask({a.key: to_optuna(a.range or a.values) for a in axes})
        # Another runner may have asked at the same moment: only the first `trials` live numbers are in the budget.
        ahead = [t for t in self.trials((*COUNTED, TrialState.RUNNING, TrialState.WAITING)) if t.number < trial.number]
        if len(ahead) >= self.search.trials:
            self._reason(trial._trial_id, "over the budget: another runner was first")
            self.study.tell(trial, state=TrialState.FAIL)
            return None
        values = {a.key: from_optuna(a.range or a.values, trial.params[a.key]) for a in axes}
        return self._write(trial.number, values)

    def _write(self, number: int, values: dict[str, Any]) -> Path:
        keys = tuple(values)
        if self._text is None or self._text[0] != keys:  # the base config dumped once, values put in per trial
            self._text = (keys, ConfigText(self.plan.base, list(keys)))
        text = self._text[1].render(values)
        name = trial_name(number)
        record = {
            "trial": name,
            "leaf": self.plan.leaf.name,
            "mode": self.plan.leaf.mode.value,
            "axes": values,
            "status": Status.PENDING.value,
            "in_sweep": True,
            "config_hash": config_hash(text),
            "study": {"storage": self.url, "name": self.study.study_name, "number": number,
                      "monitor": self.search.monitor, "mode": self.search.mode},
        }  # fmt: skip
        trial = Trial(self.leaf_dir / name)
        if not create_trial(trial, text, dump(record)):
            raise FileExistsError(
                f"{trial.dir} exists, but study trial {number} was just created: the study in {self.url} is not the "
                "one these trials came from. Use another --out, or put the study's file back."
            )
        return trial.dir

    def tell(self, trial_dir: Path) -> str | None:
        """Tell the study how the trial ended, as its trial.yaml says; None while it is to continue."""
        record = Trial(Path(trial_dir)).record()
        number = (record.get("study") or {}).get("number")
        status = Status(record.get("status", Status.PENDING.value))
        state = ENDINGS.get(status)
        if number is None or state is None:
            return None
        frozen = self.trials()[number]
        if frozen.state is not TrialState.RUNNING:
            return frozen.state.name.lower()
        if state is TrialState.COMPLETE:
            if not frozen.intermediate_values:
                monitor = self.search.monitor
                self._reason(frozen._trial_id, f"no value of {monitor} was reported")
                state = TrialState.FAIL
            else:
                value = frozen.intermediate_values[max(frozen.intermediate_values)]  # the last epoch's
                self.study.tell(number, values=value)
                return "complete"
        self.study.tell(number, state=state)
        return state.name.lower()

    def to_continue(self) -> list[Path]:
        """Trials the study has as running whose directories say they ended are told now; the rest (left by a
        killed runner, or running in another) are returned, to be resumed where no one holds them."""
        left = []
        for frozen in self.trials((TrialState.RUNNING,)):
            trial_dir = self.leaf_dir / trial_name(frozen.number)
            if not trial_dir.is_dir():
                if _runner_gone(frozen):  # it died between asking and writing: the trial never ran
                    self._reason(frozen._trial_id, "its runner died before it started")
                    self.study.tell(frozen.number, state=TrialState.FAIL)
                continue  # else another runner's, asked a moment ago
            if self.tell(trial_dir) is None:
                left.append(trial_dir)
        return left


def _runner_gone(frozen: optuna.trial.FrozenTrial) -> bool:
    """The runner that asked for the trial died before writing its directory, which takes it milliseconds."""
    started = frozen.datetime_start
    return started is not None and (datetime.datetime.now() - started).total_seconds() > UNWRITTEN_SECONDS


def _create(url: str, name: str, search: Search) -> tuple[optuna.storages.BaseStorage, optuna.Study]:
    """Create the study, or load it if it exists. Runners starting together on a fresh database can race in its
    tables' creation (one sees the other's half-made schema): the loser tries again."""
    for attempt in range(3):
        try:
            store = storage(url)
            return store, optuna.create_study(
                storage=store, study_name=name, direction=search.direction, load_if_exists=True,
                pruner=pruner(search.pruner, search.pruner_args),
            )  # fmt: skip
        except SQLAlchemyError:
            if attempt == 2:
                raise
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def open_study(plan: LeafPlan, out: Path, url: str | None = None, worker: int = 0) -> LeafStudy:
    """Create the leaf's study if it does not exist (once, before any worker starts), else load it; `worker` is a
    SLURM worker's index (its sampler's seed)."""
    leaf_dir = leaf_out(plan, out)
    leaf_dir.mkdir(parents=True, exist_ok=True)
    search = plan.search
    assert search is not None
    url = url or default_storage(leaf_dir)
    name = plan.leaf.name or leaf_dir.name
    store, made = _create(url, name, search)
    if SEARCH_ATTR not in made.user_attrs:
        made.set_user_attr(SEARCH_ATTR, search.as_record())
    seen = len(made.get_trials(deepcopy=False))
    study = optuna.load_study(
        study_name=name,
        storage=store,
        sampler=sampler(search, seen, worker),
        pruner=pruner(search.pruner, search.pruner_args),
    )
    return LeafStudy(plan, leaf_dir, url, study)


def load_trial_study(url: str, name: str) -> optuna.Study:
    """The study a trial belongs to, with the pruner it was created with (for the trial's pruning callback)."""
    study = optuna.load_study(study_name=name, storage=storage(url))
    search = search_of(study)
    study.pruner = pruner(search.pruner, search.pruner_args)
    return study
