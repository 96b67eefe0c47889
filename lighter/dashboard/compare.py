"""Which setting beats seed noise: statistics per setting of one value per trial, and a Welch test against the best.

A pure function of a table (one row per trial: its setting and its value); `store` builds the table and `app`
serves the result. The verdict of a row answers "is its difference to the best setting larger than seed noise?",
by a two-sided Welch t-test (unequal variances) at `ALPHA`; the best setting's own row is tested against the
runner-up. Fewer than two trials on either side cannot say.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

ALPHA = 0.05
CONFIDENCE = 0.95
BETTER = "better than seed noise"  # the best setting, against the runner-up
WORSE = "worse than the best beyond seed noise"
WITHIN = "within noise"
FEW = "n < 2, run more seeds"
ALONE = "the only setting"
COLUMNS = ["setting", "n", "mean", "std", "ci_low", "ci_high", "best", "worst", "difference", "p_value", "verdict"]


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test; two sets without spread differ surely or not at all."""
    if pd.Series(a).std() == 0 and pd.Series(b).std() == 0:
        return 1.0 if math.isclose(sum(a) / len(a), sum(b) / len(b)) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def interval(values: list[float]) -> tuple[float, float] | tuple[None, None]:
    """The `CONFIDENCE` interval of the mean (Student's t); none for fewer than two values."""
    n = len(values)
    if n < 2:
        return None, None
    mean, sem = sum(values) / n, pd.Series(values).std() / math.sqrt(n)
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, n - 1)) * sem
    return mean - half, mean + half


def compare(trials: pd.DataFrame, *, higher_is_better: bool) -> pd.DataFrame:
    """One row per setting of `trials` (columns `setting`, `value`), best mean first, with the `COLUMNS` above."""
    trials = trials.dropna(subset=["value"])
    groups = {setting: part["value"].astype(float).tolist() for setting, part in trials.groupby("setting", sort=False)}
    if not groups:
        return pd.DataFrame(columns=COLUMNS)
    sign = 1 if higher_is_better else -1
    order = sorted(groups, key=lambda s: -sign * (sum(groups[s]) / len(groups[s])))
    best = groups[order[0]]
    rows = []
    for rank, setting in enumerate(order):
        values = groups[setting]
        n, mean = len(values), sum(values) / len(values)
        other = groups[order[1]] if rank == 0 and len(order) > 1 else best if rank > 0 else None
        p = welch_p(values, other) if other is not None and n > 1 and len(other) > 1 else None
        if other is None:
            verdict = ALONE
        elif p is None:
            verdict = FEW
        elif p >= ALPHA:
            verdict = WITHIN
        else:
            verdict = BETTER if rank == 0 else WORSE
        low, high = interval(values)
        rows.append(
            {
                "setting": setting,
                "n": n,
                "mean": mean,
                "std": pd.Series(values).std() if n > 1 else None,
                "ci_low": low,
                "ci_high": high,
                "best": max(values) if higher_is_better else min(values),
                "worst": min(values) if higher_is_better else max(values),
                "difference": mean - sum(best) / len(best),
                "p_value": p,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
