"""What `lighter sweep results` shows of a searched leaf: trial counts by state, the best trial, and Optuna's
parameter importances once enough trials have completed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from lighter.sweep.study import REASON_ATTR, load_trial_study
from lighter.sweep.trial import Trial, trial_name

IMPORTANCE_AFTER = 4  # complete trials before importances are worth showing (fANOVA needs several to split on)


@dataclass
class SearchResult:
    leaf: str
    sampler: str
    budget: int
    monitor: str
    mode: str
    counts: dict[str, int] = field(default_factory=dict)  # complete, pruned, failed, running
    best: dict[str, Any] | None = None  # trial, number, value, values
    importances: dict[str, float] | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _importances(study: optuna.Study, complete: int) -> tuple[dict[str, float] | None, str]:
    if complete < IMPORTANCE_AFTER:
        return None, f"importances after {IMPORTANCE_AFTER} complete trials"
    try:
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as err:  # e.g. every trial with the same values
        return None, f"no importances: {err}"
    return {k: round(float(v), 4) for k, v in found.items()}, ""


def search_results(trials: list[Trial]) -> list[SearchResult]:
    """One result per searched leaf among `trials` (those whose record names a study)."""
    by_study: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    leaf_dirs: dict[tuple[str, str], Path] = {}
    for trial in trials:
        record = trial.record()
        study = record.get("study")
        if isinstance(study, dict):
            key = (str(study["storage"]), str(study["name"]))
            by_study[key].append(record)
            leaf_dirs[key] = trial.dir.parent
    found = []
    for (storage, name), records in by_study.items():
        study = load_trial_study(storage, name)
        search = study.user_attrs.get("lighter_search", {})
        counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0}
        for t in study.get_trials(deepcopy=False):
            if t.user_attrs.get(REASON_ATTR, "").startswith("over the budget"):
                continue  # asked by a runner that found the budget taken: never a trial directory
            state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
            counts[state.get(t.state, "running")] += 1
        result = SearchResult(
            leaf=str(records[0].get("leaf", name)),
            sampler=str(search.get("sampler", "")),
            budget=int(search.get("trials", 0)),
            monitor=str(search.get("monitor", "")),
            mode=str(search.get("mode", "")),
            counts=counts,
        )
        if counts["complete"]:
            best = study.best_trial
            record = Trial(leaf_dirs[(storage, name)] / trial_name(best.number)).record()
            values = record.get("axes") or dict(best.params)
            result.best = {"trial": trial_name(best.number), "value": float(best.value), "values": values}
        result.importances, result.note = _importances(study, counts["complete"])
        found.append(result)
    return found
