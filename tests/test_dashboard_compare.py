"""The comparison of settings: statistics as a pure function of a table, the trial table, and `/api/compare`.

Every expected number is recomputed here from the values with scipy, or worked out by hand in a comment.
"""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest
import yaml
from scipy import stats
from test_dashboard import trial_record, write_run

from lighter.dashboard.compare import ALONE, BETTER, FEW, WITHIN, WORSE, compare, interval, welch_p
from lighter.dashboard.reduce import BATCH_MEAN, LOGGED, reached

A, B, C = [0.90, 0.91, 0.92], [0.50, 0.52, 0.51], [0.80]


def table(**groups: list[float]) -> pd.DataFrame:
    return pd.DataFrame([{"setting": s, "value": v} for s, values in groups.items() for v in values])


def test_compare_orders_settings_and_tests_each_against_the_best():
    result = compare(table(b=B, a=A, c=C), higher_is_better=True).set_index("setting")
    assert list(result.index) == ["a", "c", "b"]  # by mean: 0.91, 0.8, 0.51
    a, b = result.loc["a"], result.loc["b"]
    assert (a["n"], a["best"], a["worst"]) == (3, 0.92, 0.90) and a["mean"] == pytest.approx(0.91)
    assert a["std"] == pytest.approx(0.01) and math.isnan(result.loc["c"]["std"])
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)  # 4.303 * 0.01 / 1.732 = 0.0248
    assert (a["ci_low"], a["ci_high"]) == (pytest.approx(0.91 - half), pytest.approx(0.91 + half))
    assert a["verdict"] == FEW and result.loc["c"]["verdict"] == FEW  # the runner-up has one trial
    assert b["difference"] == pytest.approx(0.51 - 0.91)
    assert b["p_value"] == pytest.approx(stats.ttest_ind(B, A, equal_var=False).pvalue) and b["p_value"] < 0.05
    assert b["verdict"] == WORSE


@pytest.mark.parametrize(
    ("groups", "higher", "verdicts"),
    [
        pytest.param({"a": A, "b": B}, True, [BETTER, WORSE], id="apart"),
        pytest.param({"a": A, "b": [0.89, 0.93, 0.905]}, True, [WITHIN, WITHIN], id="overlapping"),
        pytest.param({"a": A, "b": B}, False, [BETTER, WORSE], id="lower-is-better"),
        pytest.param({"a": [1.0, 1.0], "b": [2.0, 2.0]}, True, [BETTER, WORSE], id="no-spread-apart"),
        pytest.param({"a": [1.0, 1.0], "b": [1.0, 1.0]}, True, [WITHIN, WITHIN], id="no-spread-equal"),
        pytest.param({"a": A}, True, [ALONE], id="one-setting"),
        pytest.param({"a": [0.9], "b": [0.8]}, True, [FEW, FEW], id="one-seed-each"),
    ],
)
def test_verdicts(groups, higher, verdicts):
    result = compare(table(**groups), higher_is_better=higher)
    assert result["verdict"].tolist() == verdicts
    if len(groups) == 2 and all(len(v) > 1 for v in groups.values()) and len({*map(tuple, groups.values())}) > 1:
        first, second = (groups[s] for s in result["setting"])
        if pd.Series(first).std() > 0:
            assert result["p_value"].iloc[1] == pytest.approx(stats.ttest_ind(second, first, equal_var=False).pvalue)
    if not higher:
        assert result["setting"].tolist() == ["b", "a"] and result["best"].iloc[0] == 0.50


def test_compare_of_no_trials_is_an_empty_table():
    assert compare(pd.DataFrame(columns=["setting", "value"]), higher_is_better=True).empty


def test_interval_and_welch_agree_with_scipy():
    low, high = interval(A)
    ci = stats.t.interval(0.95, 2, loc=0.91, scale=stats.sem(A))
    assert (low, high) == (pytest.approx(ci[0]), pytest.approx(ci[1]))
    assert interval([1.0]) == (None, None)
    assert welch_p(A, B) == pytest.approx(stats.ttest_ind(A, B, equal_var=False).pvalue)


def test_reached_prefers_lightnings_logged_epoch_values():
    epochs = pd.DataFrame(
        {"epoch": [0, 0, 1, 1], "mode": ["train", "val", "train", "val"], "loss": [2.0, 1.5, 1.0, 0.9],
         "accuracy": [0.5, 0.6, 0.7, 0.75], "n_batches": [3, 1, 3, 1]}
    )  # fmt: skip
    metrics = pd.DataFrame(
        {"epoch": [0, 0, 1, 1], "step": [2, 2, 5, 5], "val/metrics/accuracy/epoch": [0.62, None, 0.74, None],
         "train/loss/step": [None, 1.9, None, 1.1]}
    )  # fmt: skip
    got = reached(epochs, metrics)
    assert got["val/accuracy"] == dict(final=0.74, min=0.62, max=0.74, epochs=2, source=LOGGED)
    assert got["val/loss"] == dict(final=0.9, min=0.9, max=1.5, epochs=2, source=BATCH_MEAN)  # not logged per epoch
    assert got["train/loss"]["source"] == BATCH_MEAN and "n_batches" not in {k.split("/")[1] for k in got}


# ---------------------------------------------------------------------------------------------------- the API
LR = "system::optimizer::lr"


def trial(root, name: str, *, leaf: str, mode: str, lr: float, seed: int, scale: float, axes: dict, **record):
    done = record.get("status", "done") == "done"  # a done trial's run finished: run.yaml says so
    folder = write_run(root / leaf / name, epochs=2, scale=scale, trial={
        **trial_record(name, **axes), "leaf": leaf, "mode": mode, **record},
        run={"status": "finished", "stage": "fit"} if done else None)  # fmt: skip
    (folder / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "system": {"optimizer": {"lr": lr}}}))
    return folder


@pytest.fixture
def cascade(tmp_path):
    """A sweep over lr (seed 0 from the root config) and an experiment over 3 seeds of two of its settings."""
    root = tmp_path / "out"
    for i, lr in enumerate((0.1, 0.01, 0.001)):
        trial(root, f"trial_{i:03d}", leaf="sweep/lr", mode="sweep", lr=lr, seed=0, scale=1 + i, axes={LR: lr})
    for lr, base in ((0.1, 1.0), (0.01, 2.0)):
        for seed in range(3):
            name = f"trial_{lr}_{seed}"
            trial(root, name, leaf="experiment/lr", mode="experiment", lr=lr, seed=seed, scale=base + 0.1 * seed,
                  axes={"seed": seed})  # fmt: skip
    trial(root, "trial_009", leaf="sweep/lr", mode="sweep", lr=0.5, seed=0, scale=1, axes={LR: 0.5}, status="failed")
    trial(root, "trial_010", leaf="sweep/lr", mode="sweep", lr=0.2, seed=0, scale=1, axes={LR: 0.2}, in_sweep=False)
    return root


@pytest.fixture
def client(cascade):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from lighter.dashboard.app import create_app

    with TestClient(create_app(cascade), base_url="http://localhost:8050") as test_client:
        yield test_client


def test_experiments_join_the_sweep_setting_they_repeat(client):
    body = client.get("/api/compare", params={"mode": "val", "metric": "loss", "by": LR, "best": "min"}).json()
    settings = {row["setting"]: row for row in body["settings"]}
    assert list(settings) == ["0.1", "0.01", "0.001"]  # lowest final val loss first; 0.2 left the sweep
    assert [settings[s]["n"] for s in settings] == [3, 3, 1]  # the sweep's seed-0 run is the experiment's seed 0
    assert sorted(settings["0.1"]["runs"]) == [f"experiment/lr/trial_0.1_{seed}" for seed in range(3)]
    # Final val loss of a run is scale / 2.5 (test_dashboard.batch_rows): 0.1 -> 1.0, 1.1, 1.2; 0.01 -> 2.0, 2.1, 2.2.
    first, second = [v / 2.5 for v in (1.0, 1.1, 1.2)], [v / 2.5 for v in (2.0, 2.1, 2.2)]
    assert settings["0.1"]["mean"] == pytest.approx(1.1 / 2.5)
    p = stats.ttest_ind(second, first, equal_var=False).pvalue
    assert settings["0.01"]["p_value"] == pytest.approx(p) and p < 0.05
    assert settings["0.1"]["verdict"] == BETTER and settings["0.01"]["verdict"] == WORSE
    assert settings["0.001"]["verdict"] == FEW
    runs = body["runs"]
    assert runs["sweep/lr/trial_000"]["counted"] is False and runs["sweep/lr/trial_000"]["setting"] == "0.1"
    assert runs["sweep/lr/trial_009"]["counted"] is False  # failed
    assert runs["sweep/lr/trial_010"]["counted"] is False and runs["sweep/lr/trial_010"]["setting"] == "0.2"
    assert runs["sweep/lr/trial_002"]["final"] == pytest.approx(3 / 2.5) and body["sources"] == [BATCH_MEAN]


def test_compare_by_leaf_and_best_values(client):
    body = client.get(
        "/api/compare", params={"mode": "val", "metric": "accuracy", "value": "best", "best": "max"}
    ).json()
    assert body["by"] == ["leaf"]
    settings = {row["setting"]: row["n"] for row in body["settings"]}
    assert settings == {"sweep/lr": 3, "experiment/lr": 6}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"metric": "loss", "best": "min"}, "missing ?mode=", id="no-mode"),
        pytest.param({"mode": "val", "metric": "loss", "best": "min", "value": "last"}, "value=last", id="value"),
        pytest.param({"mode": "val", "metric": "loss", "best": "lowest"}, "best=lowest: expected", id="best"),
    ],
)
def test_api_compare_errors(client, params, message):
    response = client.get("/api/compare", params=params)
    assert response.status_code == 400 and message in response.json()["error"]


@pytest.mark.parametrize(
    ("axes", "by", "expected"),
    [
        pytest.param({LR: 0.0001}, [LR], "0.0001", id="float"),
        pytest.param({LR: 0.00010001}, [LR], "0.00010001", id="close-floats-stay-apart"),
        pytest.param({"opt": "adam", "bs": 32}, ["opt", "bs"], "opt=adam, bs=32", id="several-axes"),
        pytest.param({"amp": True}, ["amp"], "true", id="bool"),
        pytest.param({"opt": "adam"}, [LR], None, id="axis-missing"),
    ],
)
def test_setting_names(axes, by, expected):
    from lighter.dashboard.settings import setting_of
    from lighter.dashboard.store import Run

    run = Run(id="t", source=None, metrics=[], version="0", axes=axes, values=dict(axes))
    assert setting_of(run, by) == expected
