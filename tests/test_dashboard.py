"""`lighter dashboard`: the epoch reductions, the epoch-log cache, the JSON API and the command.

The reductions are checked against values worked out by hand below each table; the API runs through Starlette's
test client over real folders in tmp_path; the command runs as a real subprocess serving real HTTP.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run_cli

from lighter.dashboard.reduce import LogError, epoch_table, lightning_epoch_table
from lighter.dashboard.store import EPOCH_LOG, RunStore, refresh_epoch_log

# Every kind of column: keys, a dropped batch index, means (loss, acc, dice), lasts (lr, iter_budget), medians
# (grad_norm, error_*, iter_*), the max (time), a text column and a mixed text/number column (both ignored).
CRAFTED = """\
epoch,mode,batch,step,loss,acc,dice,lr,iter_budget,grad_norm,error_min,error_med,error_max,iter_min,iter_med,iter_max,time,note,mixed
0,train,0,0,1.0,0.5,0.1,0.1,10,1,0.1,0.5,0.9,1,5,9,0.5,a,1
0,train,1,1,2.0,0.25,0.2,0.2,20,100,0.3,0.7,2.0,3,9,20,1.0,b,x
0,train,2,2,4.5,0.75,0.6,0.3,30,3,0.2,0.6,1.0,2,6,10,1.75,c,2
0,val,0,2,3.0,0.25,,,,,,,,,,,2.0,d,3
0,val,1,2,5.0,0.75,,,,,,,,,,,2.5,e,4
1,train,0,3,1.0,1.0,0.4,0.05,40,7,1,1,1,4,4,4,3.0,f,5
1,test,0,3,6.0,0.5,,,,,,,,,,,9.0,g,6
"""
# By hand. Epoch 0 train: loss (1+2+4.5)/3 = 2.5, acc (0.5+0.25+0.75)/3 = 0.5, dice 0.9/3 = 0.3, lr and iter_budget
# the last (0.3, 30), grad_norm median(1, 100, 3) = 3, error_min median(0.1, 0.3, 0.2) = 0.2, error_med 0.6,
# error_max median(0.9, 2, 1) = 1, iter_min 2, iter_med 6, iter_max 10, time max 1.75, step last 2, 3 batches.
# Epoch 0 val: loss 4, acc 0.5, step 2, time 2.5, 2 batches, nothing logged for lr and the medians.
EXPECTED = [
    dict(epoch=0, mode="train", step=2, loss=2.5, acc=0.5, dice=0.3, lr=0.3, iter_budget=30, grad_norm=3,
         error_min=0.2, error_med=0.6, error_max=1.0, iter_min=2, iter_med=6, iter_max=10, time=1.75, n_batches=3),
    dict(epoch=0, mode="val", step=2, loss=4.0, acc=0.5, time=2.5, n_batches=2),
    dict(epoch=1, mode="train", step=3, loss=1.0, acc=1.0, dice=0.4, lr=0.05, iter_budget=40, grad_norm=7,
         error_min=1, error_med=1, error_max=1, iter_min=4, iter_med=4, iter_max=4, time=3.0, n_batches=1),
    dict(epoch=1, mode="test", step=3, loss=6.0, acc=0.5, time=9.0, n_batches=1),
]  # fmt: skip
REDUCED_COLUMNS = ["epoch", "mode", "step", "loss", "acc", "dice", "lr", "iter_budget", "grad_norm", "error_min",
                   "error_med", "error_max", "iter_min", "iter_med", "iter_max", "time", "n_batches"]  # fmt: skip


def _table(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def _assert_rows(table: pd.DataFrame, expected: list[dict]) -> None:
    assert len(table) == len(expected), table
    for got, want in zip(table.to_dict("records"), expected, strict=True):
        for column, value in got.items():
            if column not in want:
                assert pd.isna(value), (column, got)
            elif isinstance(want[column], str):
                assert value == want[column], (column, got)
            else:
                assert value == pytest.approx(want[column]), (column, got)


def test_reductions_match_hand_computed_values():
    table = epoch_table(_table(CRAFTED))
    assert list(table.columns) == REDUCED_COLUMNS  # batch, note and mixed are gone; the log's order kept
    _assert_rows(table, EXPECTED)


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        pytest.param("epoch,mode,batch,loss\n0,train,0,1\n0,train,1,3\n", ["loss"], id="loss-only"),
        pytest.param("epoch,mode,accuracy,time\n0,val,0.5,1\n0,val,1.0,2\n", ["accuracy", "time"], id="no-batch-col"),
        pytest.param("epoch,mode,loss,tag\n0,train,1,x\n0,train,3,y\n", ["loss"], id="text-column"),
    ],
)
def test_absent_columns_stay_absent(text, columns):
    table = epoch_table(_table(text))
    assert list(table.columns) == ["epoch", "mode", *columns, "n_batches"]
    assert table["n_batches"].tolist() == [2]


def test_rows_come_in_epoch_then_mode_order_whatever_the_log_order():
    text = "epoch,mode,loss\n1,val,1\n0,val,2\n0,train,3\n1,train,4\n0,custom,5\n"
    table = epoch_table(_table(text))
    assert list(zip(table["epoch"], table["mode"], strict=True)) == [
        (0, "train"), (0, "val"), (0, "custom"), (1, "train"), (1, "val")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("mode,loss\ntrain,1\n", "no 'epoch' column", id="no-epoch"),
        pytest.param("epoch,loss\n0,1\n", "no 'mode' column", id="no-mode"),
    ],
)
def test_a_log_without_its_keys_names_the_missing_column(text, message):
    with pytest.raises(LogError, match=message):
        epoch_table(_table(text))


def test_a_header_only_log_reduces_to_no_rows():
    assert epoch_table(_table("epoch,mode,batch,loss\n")).empty


# Lightning's CSVLogger: the Lighter 0.0.4 names (with lighter's `train/optimizer/Adam/lr`), and older ones
# (`val/loss`, `train/loss_step`) with a LearningRateMonitor's `lr-Adam`. Step values are averaged only where no
# epoch value was logged.
LIGHTNING = {
    "lighter-names": """\
epoch,step,train/loss/step,train/loss/epoch,val/loss/epoch,val/metrics/acc/epoch,train/optimizer/Adam/lr
0,0,3.0,,,,0.1
0,1,1.0,,,,
0,1,,2.5,,,
0,1,,,4.0,0.5,
1,3,0.5,,,,0.05
1,3,,0.75,,,
1,3,,,3.0,0.75,
""",
    "old-names": """\
epoch,step,train/loss_step,val/loss,val/metrics/acc,lr-Adam
0,0,3.0,,,0.1
0,1,2.0,,,
0,1,,4.0,0.5,
1,3,0.5,,,0.05
1,3,1.0,,,
1,3,,3.0,0.75,
""",
}


@pytest.mark.parametrize("names", list(LIGHTNING))
def test_lightning_metrics_csv_reduces_to_epoch_rows(names):
    table = lightning_epoch_table(_table(LIGHTNING[names]))
    # Epoch 0 train loss: the epoch value 2.5 (lighter names) or the mean of the steps (3+2)/2 (old names).
    _assert_rows(
        table,
        [
            dict(epoch=0, mode="train", loss=2.5, lr=0.1, step=1),
            dict(epoch=0, mode="val", loss=4.0, acc=0.5, step=1),
            dict(epoch=1, mode="train", loss=0.75, lr=0.05, step=3),
            dict(epoch=1, mode="val", loss=3.0, acc=0.75, step=3),
        ],
    )


# ---------------------------------------------------------------------------------------------------- runs on disk
def batch_rows(epochs: int, batches: int = 4, *, start: int = 0, scale: float = 1.0) -> list[dict]:
    rows = []
    for epoch in range(start, start + epochs):
        for batch in range(batches):
            step = epoch * batches + batch
            rows.append(dict(epoch=epoch, mode="train", batch=batch, step=step, loss=scale / (step + 1),
                             accuracy=1 - scale / (step + 2), lr=0.1, grad_norm=1.0, time=step * 0.1))  # fmt: skip
        rows.append(dict(epoch=epoch, mode="val", batch=0, step=step, loss=scale / (epoch + 1.5),
                         accuracy=1 - scale / (epoch + 3), time=step * 0.1 + 0.05))  # fmt: skip
    return rows


def write_run(folder: Path, *, epochs: int = 3, scale: float = 1.0, trial: dict | None = None, run: dict | None = None):
    """A run folder as lighter's BatchLog, RunRecorder and a sweep would leave it."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(batch_rows(epochs, scale=scale)).to_csv(folder / "batch_log.csv", index=False)
    if trial is not None:
        (folder / "trial.yaml").write_text(yaml.safe_dump(trial))
    if run is not None:
        (folder / "run.yaml").write_text(yaml.safe_dump(run))
    return folder


def trial_record(name: str, status: str = "done", **axes) -> dict:
    digest = "0" * 8
    return dict(trial=name, leaf=".", mode="sweep", axes=axes, status=status, in_sweep=True, config_hash=digest,
                run_hash=digest)  # fmt: skip


def append_epoch(folder: Path, epoch: int) -> None:
    """The run logs one more epoch; its batch log ends up strictly newer than anything derived from it."""
    log = folder / "batch_log.csv"
    before = os.stat(log).st_mtime_ns
    pd.DataFrame(batch_rows(1, start=epoch)).to_csv(log, mode="a", header=False, index=False)
    newer = max(os.stat(log).st_mtime_ns, before + 1_000_000)
    os.utime(log, ns=(newer, newer))


def test_epoch_log_is_written_beside_the_batch_log_and_reused(tmp_path):
    run = write_run(tmp_path / "r")
    table = refresh_epoch_log(run)
    epoch_log = run / EPOCH_LOG
    first = os.stat(epoch_log)
    assert first.st_mtime_ns == os.stat(run / "batch_log.csv").st_mtime_ns  # stamped with its source's time
    pd.testing.assert_frame_equal(pd.read_csv(epoch_log), table, check_dtype=False)
    for store in (RunStore(tmp_path), RunStore(tmp_path)):  # a fresh server finds it on disk too
        store.epochs("r")
        store.epochs("r")
    again = os.stat(epoch_log)
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # not rewritten


def test_a_newer_batch_log_regenerates_the_epoch_log(tmp_path):
    run = write_run(tmp_path / "r", epochs=2)
    store = RunStore(tmp_path)
    assert store.epochs("r")["epoch"].max() == 1
    before = os.stat(run / EPOCH_LOG).st_mtime_ns
    append_epoch(run, 2)
    assert store.epochs("r")["epoch"].max() == 2
    assert pd.read_csv(run / EPOCH_LOG)["epoch"].max() == 2
    assert os.stat(run / EPOCH_LOG).st_mtime_ns > before


@pytest.mark.parametrize("same_size", [pytest.param(False, id="longer"), pytest.param(True, id="same-size")])
def test_an_edited_batch_log_whose_mtime_was_put_back_is_never_served_stale(tmp_path, same_size):
    run = write_run(tmp_path / "r", epochs=2)
    log = run / "batch_log.csv"
    store = RunStore(tmp_path)
    assert store.epochs("r")["loss"].iloc[1] == pytest.approx(1 / 1.5)  # epoch 0's val row
    before = os.stat(log)
    text = log.read_text().replace("0.6666666666666666", "0.5" if not same_size else "0.7777777777777777")
    assert text != log.read_text()
    log.write_text(text)
    os.utime(log, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `cp -p`, rsync or an editor may leave it
    assert (os.stat(log).st_size == before.st_size) is same_size
    expected = 0.7777777777777777 if same_size else 0.5
    assert store.epochs("r")["loss"].iloc[1] == pytest.approx(expected)  # this server, its memory cache
    assert RunStore(tmp_path).epochs("r")["loss"].iloc[1] == pytest.approx(expected)  # a fresh one, the file
    assert pd.read_csv(run / EPOCH_LOG)["loss"].iloc[1] == pytest.approx(expected)


def test_a_half_written_last_line_of_a_live_batch_log_is_left_for_later(tmp_path):
    run = write_run(tmp_path / "r", epochs=2)
    with open(run / "batch_log.csv", "a") as f:
        f.write("2,train,0,8,0.")  # the training process is in the middle of this line
    table = RunStore(tmp_path).epochs("r")
    assert table["epoch"].max() == 1 and table["n_batches"].tolist() == [4, 1, 4, 1]


def test_a_reader_racing_regenerations_never_sees_a_partial_epoch_log(tmp_path):
    run = write_run(tmp_path / "r", epochs=1)
    refresh_epoch_log(run)
    stop = threading.Event()
    seen: list[str] = []

    def writer():
        for epoch in range(1, 40):
            append_epoch(run, epoch)
            refresh_epoch_log(run)
        stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while not stop.is_set():
            text = (run / EPOCH_LOG).read_text()
            rows = list(csv.reader(io.StringIO(text)))
            header, body = rows[0], rows[1:]
            # Complete: ends in a newline, every row full, epochs 0..k each with a train and a val row.
            assert text.endswith("\n") and all(len(row) == len(header) for row in body), text[-200:]
            epochs = [int(row[0]) for row in body]
            assert epochs == sorted(epochs) and len(epochs) == 2 * (epochs[-1] + 1), epochs
            seen.append(text)
    finally:
        thread.join()
    assert len(seen) > 1
    assert pd.read_csv(run / EPOCH_LOG)["epoch"].max() == 39
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []  # no temporary file left behind


def test_a_folder_that_cannot_take_the_epoch_log_is_served_from_memory(tmp_path):
    run = write_run(tmp_path / "r", epochs=2)
    (run / EPOCH_LOG).mkdir()  # in the way, as a read-only results folder would be
    table = RunStore(tmp_path).epochs("r")
    assert table["epoch"].max() == 1 and (run / EPOCH_LOG).is_dir()


# ---------------------------------------------------------------------------------------------------- the API
@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A sweep of two trials, a plain lighter run, a Lightning-only run (not lighter's), and a stray folder."""
    root = tmp_path / "out"
    finished = dict(status="finished", stage="fit")  # with its batch log: a complete trial
    write_run(root / "sweep" / "trial_000", trial=trial_record("trial_000", lr=0.1, seed=0), run=finished)
    write_run(root / "sweep" / "trial_001", scale=2, trial=trial_record("trial_001", "running", lr=0.01, seed=0))
    write_run(root / "plain", run=dict(status="finished", stage="fit"))
    lightning = root / "lightning_logs" / "version_0"
    lightning.mkdir(parents=True)
    (lightning / "metrics.csv").write_text(LIGHTNING["lighter-names"])
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no run here")
    (root / "sweep" / "trial_000" / "checkpoints").mkdir()
    return root


@pytest.fixture
def client(out: Path):
    with warnings.catch_warnings():  # newer Starlette suggests httpx2 for its test client; httpx works the same
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from lighter.dashboard.app import create_app

    with TestClient(create_app(out), base_url="http://localhost:8050") as test_client:
        yield test_client


def test_api_runs_lists_trials_lighter_runs_and_runs_not_made_by_lighter(client, out):
    body = client.get("/api/runs").json()
    assert body["root"] == str(out.resolve())
    runs = {run["id"]: run for run in body["runs"]}
    assert list(runs) == ["lightning_logs/version_0", "plain", "sweep/trial_000", "sweep/trial_001"]
    assert runs["sweep/trial_001"]["status"] == "running" and runs["sweep/trial_000"]["status"] == "done"
    assert runs["sweep/trial_001"]["axes"] == {"lr": 0.01, "seed": 0}
    assert runs["sweep/trial_000"]["metrics"] == ["loss", "accuracy", "lr", "grad_norm"]
    assert runs["plain"]["status"] == "finished" and runs["plain"]["axes"] == {}
    assert runs["lightning_logs/version_0"]["metrics"] == ["loss", "acc", "lr"]
    assert "status" not in runs["lightning_logs/version_0"]  # nothing recorded one: none is made up


def test_api_runs_names_the_live_statuses_the_page_counts_as_running(client):
    assert client.get("/api/runs").json()["live"] == ["running", "pending"]


def test_api_epochs_returns_records(client, out):
    records = client.get("/api/epochs", params={"run": "sweep/trial_001"}).json()
    assert [(r["epoch"], r["mode"]) for r in records] == [(e, m) for e in range(3) for m in ("train", "val")]
    val0 = records[1]
    assert val0["loss"] == pytest.approx(2 / 1.5) and val0["lr"] is None and val0["n_batches"] == 1
    lightning = client.get("/api/epochs", params={"run": "lightning_logs/version_0"}).json()
    assert lightning[1] == {"epoch": 0, "mode": "val", "loss": 4.0, "acc": 0.5, "lr": None, "step": 1}


def test_a_run_changes_version_only_when_its_files_change(client, out):
    def versions():
        return {run["id"]: run["version"] for run in client.get("/api/runs").json()["runs"]}

    first = versions()
    client.get("/api/epochs", params={"run": "sweep/trial_000"})  # writes its epoch_log.csv: no change of the run
    assert versions() == first
    append_epoch(out / "sweep" / "trial_000", 3)
    changed = {run for run, version in versions().items() if first[run] != version}
    assert changed == {"sweep/trial_000"}


@pytest.mark.parametrize(
    ("run", "status", "message"),
    [
        pytest.param("nope", 404, "no run 'nope'", id="unknown"),
        pytest.param("notes", 404, "no run 'notes'", id="folder-without-logs"),
        pytest.param("../out", 403, "contains '..'", id="dot-dot"),
        pytest.param("sweep/../../x", 403, "contains '..'", id="dot-dot-inside"),
        pytest.param("/etc", 403, "absolute path", id="absolute"),
        pytest.param("link-out", 403, "link to a folder outside", id="dir-link-outside"),
        pytest.param("file-links", 403, "links to files outside", id="file-link-outside"),
    ],
)
def test_api_refuses_unknown_runs_and_escapes(client, out, run, status, message):
    outside = write_run(out.parent / "elsewhere", epochs=1)
    (out / "link-out").symlink_to(outside, target_is_directory=True)
    (out / "file-links").mkdir()
    (out / "file-links" / "batch_log.csv").symlink_to(outside / "batch_log.csv")
    response = client.get("/api/epochs", params={"run": run})
    assert response.status_code == status
    assert message in response.json()["error"]
    listed = [r["id"] for r in client.get("/api/runs").json()["runs"]]
    assert "link-out" not in listed and "file-links" not in listed


def test_api_epochs_of_many_runs_in_one_request(client, out):
    (out / "link-out").symlink_to(write_run(out.parent / "elsewhere", epochs=1), target_is_directory=True)
    wanted = ["sweep/trial_000", "lightning_logs/version_0", "nope", "../x", "link-out", "sweep/trial_000"]
    body = client.post("/api/epochs", json={"runs": wanted}).json()
    assert list(body["epochs"]) == ["sweep/trial_000", "lightning_logs/version_0"]
    assert body["epochs"]["sweep/trial_000"] == client.get("/api/epochs", params={"run": "sweep/trial_000"}).json()
    assert "no run 'nope'" in body["errors"]["nope"] and "contains '..'" in body["errors"]["../x"]
    assert "link to a folder outside" in body["errors"]["link-out"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"run": "x"}, id="no-runs-key"),
        pytest.param({"runs": "x"}, id="not-a-list"),
        pytest.param("[", id="not-json"),
    ],
)
def test_api_epochs_post_needs_a_list_of_runs(client, body):
    response = (
        client.post("/api/epochs", content=body, headers={"Content-Type": "application/json"})
        if isinstance(body, str)
        else client.post("/api/epochs", json=body)
    )
    assert response.status_code == 400 and 'expected a JSON body {"runs": [id, ...]}' in response.json()["error"]


def test_api_epochs_without_a_run_is_a_400(client):
    response = client.get("/api/epochs")
    assert response.status_code == 400 and "?run=<id>" in response.json()["error"]


def test_a_log_that_cannot_be_reduced_is_a_422_naming_the_run(client, out):
    bad = out / "bad"
    bad.mkdir()
    (bad / "batch_log.csv").write_text("step,loss\n0,1\n")
    response = client.get("/api/epochs", params={"run": "bad"})
    assert response.status_code == 422
    assert "run 'bad'" in response.json()["error"] and "no 'epoch' or 'mode' column" in response.json()["error"]


def test_an_unreadable_record_is_reported_and_the_run_still_listed(client, out):
    (out / "sweep" / "trial_000" / "trial.yaml").write_text("axes: [unclosed\n")
    run = next(r for r in client.get("/api/runs").json()["runs"] if r["id"] == "sweep/trial_000")
    assert "sweep/trial_000/trial.yaml" in run["problem"] and run["axes"] == {}


def test_page_and_plotly_are_served_locally(client):
    import plotly

    page = client.get("/").text
    assert '<script src="static/plotly.min.js">' in page and "http" not in page.split("<body>")[1]
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200
    assert len(js.content) == (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").stat().st_size
    assert "fetch(" in client.get("/static/dashboard.js").text


# ---------------------------------------------------------------------------------------------------- the command
def start_dashboard(out: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """`lighter dashboard OUT --port 0 ...` as a user runs it; returns the process and the URL it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lighter", "dashboard", str(out), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    for line in process.stdout:
        if "open http" in line:
            return process, line.split("open ", 1)[1].split()[0]
    process.kill()
    raise AssertionError(f"no URL printed: {process.stderr.read()}")


def stop(process: subprocess.Popen) -> str:
    process.terminate()
    _, err = process.communicate(timeout=20)
    return err


def test_dashboard_command_serves_the_api_over_http(out):
    process, url = start_dashboard(out, "--allow-host", "dash.example,other.example")
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/runs", timeout=20) as response:
            assert len(json.load(response)["runs"]) == 4
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "api/epochs?run=missing", timeout=20)
        assert err.value.code == 404 and "no run 'missing'" in json.load(err.value)["error"]
        allowed = urllib.request.Request(url + "api/runs", headers={"Host": "dash.example"})
        with urllib.request.urlopen(allowed, timeout=20) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(url, headers={"Host": "attacker.example"}), timeout=20)
        assert err.value.code == 403 and "--allow-host attacker.example" in json.load(err.value)["error"]
    finally:
        err_text = stop(process)
    assert "warning" not in err_text


def test_dashboard_warns_when_host_opens_it_to_the_network(out):
    process, url = start_dashboard(out, "--host", "0.0.0.0")
    port = url.rstrip("/").rsplit(":", 1)[1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=20) as response:
        assert response.status == 200
    err = stop(process)
    assert "--host 0.0.0.0 opens the dashboard to the network" in err and "127.0.0.1" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["missing"], "missing: missing; give the folder holding your runs", id="no-folder"),
        pytest.param([], "takes one folder, the one holding your runs (got none)", id="no-argument"),
        pytest.param(["out", "other"], "takes one folder, the one holding your runs (got out, other)", id="two"),
        pytest.param(["out", "--prot", "3"], "unknown option --prot for `lighter dashboard`", id="unknown-option"),
        pytest.param(["out", "--port", "http"], "--port http: expected a whole number", id="port-not-number"),
        pytest.param(["out", "--port", "70000"], "a port is 0 to 65535", id="port-out-of-range"),
        pytest.param(["out", "--host", "no.such.host.invalid"], "cannot resolve it", id="unknown-host"),
        pytest.param(["out", "--port", "BUSY"], "cannot listen on 127.0.0.1", id="port-in-use"),
    ],
)
def test_dashboard_command_errors(tmp_path, out, args, message):
    # In its own process, with a timeout: were an error missed, the command would serve forever.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = [str(busy.getsockname()[1]) if a == "BUSY" else a for a in args]
        done = run_cli(["dashboard", *args], tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"lighter: error: {message}" in done.stderr or message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("argv", [pytest.param(["--help"], id="help"), pytest.param(["dashboard", "-h"], id="dash")])
def test_help_does_not_import_the_web_stack(tmp_path, argv):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lighter", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "dashboard" in done.stdout
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "lighter" in imported
    assert not imported & {"starlette", "uvicorn", "pandas", "plotly", "torch"}


def test_a_pending_trial_is_listed_without_data_and_a_changed_done_one_reads_stale(client, out):
    pending = out / "sweep" / "trial_002"
    pending.mkdir()
    (pending / "trial.yaml").write_text(yaml.safe_dump(trial_record("trial_002", "pending", lr=0.001, seed=0)))
    stale = {**trial_record("trial_000", lr=0.1, seed=0), "run_hash": "1" * 8}  # its config changed since it ran
    (out / "sweep" / "trial_000" / "trial.yaml").write_text(yaml.safe_dump(stale))
    runs = {run["id"]: run for run in client.get("/api/runs").json()["runs"]}
    assert runs["sweep/trial_002"]["status"] == "pending" and runs["sweep/trial_002"]["metrics"] == []
    assert "source" not in runs["sweep/trial_002"]
    assert client.get("/api/epochs", params={"run": "sweep/trial_002"}).json() == []
    assert runs["sweep/trial_000"]["status"] == "stale"


def test_every_page_file_is_package_data():
    """A wheel carries the page: every file in lighter/dashboard/static matches a package-data pattern."""
    import fnmatch
    import re

    root = Path(__file__).resolve().parent.parent
    line = re.search(r'^"lighter\.dashboard" = (\[.*\])$', (root / "pyproject.toml").read_text(), re.MULTILINE)
    patterns = json.loads(line.group(1))
    static = root / "lighter" / "dashboard" / "static"
    files = [p.relative_to(static.parent).as_posix() for p in static.iterdir()]
    assert files and all(any(fnmatch.fnmatch(f, pattern) for pattern in patterns) for f in files), files


# ---------------------------------------------------------------------------------------------------- security
BOUND_HERE = frozenset(("localhost", "127.0.0.1", "::1"))
JSON_POST = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "headers", "bound", "message"),
    [
        pytest.param("GET", {"host": "localhost:8050"}, "127.0.0.1", None, id="localhost"),
        pytest.param("GET", {"host": "127.0.0.1:8050"}, "127.0.0.1", None, id="loopback-address"),
        pytest.param("GET", {"host": "[::1]:8050"}, "127.0.0.1", None, id="loopback-ipv6"),
        pytest.param("GET", {"host": "127.0.0.2"}, "127.0.0.1", None, id="loopback-range"),
        pytest.param("GET", {"host": "dash.example:80"}, "127.0.0.1", None, id="allowed-name"),
        pytest.param("GET", {"host": "10.1.2.3:8050"}, "0.0.0.0", None, id="any-address-when-bound-to-all"),
        pytest.param("GET", {"host": "attacker.example"}, "127.0.0.1", "--allow-host attacker.example", id="rebind"),
        pytest.param("GET", {"host": "attacker.example"}, "0.0.0.0", "DNS rebinding", id="rebind-bound-to-all"),
        pytest.param("GET", {"host": "10.1.2.3:8050"}, "127.0.0.1", "not an address of this", id="other-address"),
        pytest.param("GET", {}, "127.0.0.1", "--allow-host NAME", id="no-host"),
        pytest.param("POST", {"host": "localhost:8050", **JSON_POST}, "127.0.0.1", None, id="json-post"),
        pytest.param(
            "POST",
            {"host": "localhost:8050", "origin": "http://localhost:8050", "sec-fetch-site": "same-origin", **JSON_POST},
            "127.0.0.1",
            None,
            id="own-page-post",
        ),
        pytest.param(
            "POST",
            {"host": "localhost:8050", "origin": "http://evil.example", **JSON_POST},
            "127.0.0.1",
            "from http://evil.example is refused",
            id="foreign-origin",
        ),
        pytest.param(
            "POST",
            {"host": "localhost:8050", "origin": "null", **JSON_POST},
            "127.0.0.1",
            "from null is refused",
            id="opaque-origin",
        ),
        pytest.param(
            "POST",
            {"host": "localhost:8050", "sec-fetch-site": "cross-site", **JSON_POST},
            "127.0.0.1",
            "a cross-site POST is refused",
            id="cross-site",
        ),
        pytest.param(
            "POST",
            {"host": "localhost:8050", "content-type": "text/plain"},
            "127.0.0.1",
            "Content-Type: application/json (got text/plain)",
            id="text-plain",
        ),
    ],
)
def test_guard_answers_only_its_own_address_and_page(method, headers, bound, message):
    from lighter.dashboard.guard import allowed_hosts, refusal

    reason = refusal(method, headers, allowed_hosts(bound, ("dash.example",)))
    assert reason is None if message is None else message in reason, reason


def test_a_rebinding_host_and_a_cross_origin_post_are_refused(client):
    for path in ("/", "/api/runs", "/api/epochs?run=plain"):
        response = client.get(path, headers={"Host": "attacker.example"})
        assert response.status_code == 403 and "DNS rebinding" in response.json()["error"]
    simple = client.post(
        "/api/epochs",
        content='{"runs": ["plain"]}',
        headers={"Content-Type": "text/plain", "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert simple.status_code == 403 and "cross-site POST is refused" in simple.json()["error"]
    assert "epochs" not in simple.json()


def test_records_and_logs_linked_out_of_the_folder_are_not_read(client, out):
    outside = out.parent / "elsewhere"
    write_run(outside, epochs=1, trial=trial_record("trial_009", lr=123.0, seed=7))
    (outside / "epoch_log.csv").write_text("epoch,mode,loss\n0,val,42\n")
    trial = out / "sweep" / "trial_000"
    (trial / "trial.yaml").unlink()
    (trial / "run.yaml").unlink()  # the linked trial.yaml is its only record
    (trial / "trial.yaml").symlink_to(outside / "trial.yaml")
    (trial / "epoch_log.csv").symlink_to(outside / "epoch_log.csv")
    pending = out / "sweep" / "trial_002"
    pending.mkdir()
    (pending / "trial.yaml").symlink_to(outside / "trial.yaml")
    runs = {run["id"]: run for run in client.get("/api/runs").json()["runs"]}
    assert runs["sweep/trial_000"]["axes"] == {} and "status" not in runs["sweep/trial_000"]
    assert "trial_000/trial.yaml: a link to a file outside the served folder" in runs["sweep/trial_000"]["problem"]
    assert "sweep/trial_002" not in runs
    refused = client.get("/api/epochs", params={"run": "sweep/trial_002"})
    assert refused.status_code == 403 and "links to files outside" in refused.json()["error"]
    rows = client.get("/api/epochs", params={"run": "sweep/trial_000"}).json()
    assert 42 not in [row["loss"] for row in rows] and len(rows) == 6  # from its own batch log
    assert (trial / "epoch_log.csv").is_symlink() and "42" in (outside / "epoch_log.csv").read_text()  # untouched


def test_secret_named_axis_values_are_masked(client, out):
    record = trial_record("trial_000", lr=0.1, **{"trainer::logger::api_key": "sk-live-123", "hf_token": "hf_abc"})
    (out / "sweep" / "trial_000" / "trial.yaml").write_text(yaml.safe_dump(record))
    listing = client.get("/api/runs").text
    assert "sk-live-123" not in listing and "hf_abc" not in listing
    run = next(r for r in json.loads(listing)["runs"] if r["id"] == "sweep/trial_000")
    assert run["axes"] == {"lr": 0.1, "trainer::logger::api_key": "<secret>", "hf_token": "<secret>"}


def test_a_text_column_is_not_a_metric(client, out):
    run = out / "noted"
    run.mkdir()
    (run / "batch_log.csv").write_text(CRAFTED)
    listed = next(r for r in client.get("/api/runs").json()["runs"] if r["id"] == "noted")
    assert "note" not in listed["metrics"] and "mixed" not in listed["metrics"]
    assert listed["metrics"][:3] == ["loss", "acc", "dice"]
