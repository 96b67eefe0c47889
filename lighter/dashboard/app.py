"""HTTP routes over a `RunStore`: the JSON API, the page, and plotly.js from the installed plotly package.

Handlers are plain functions, so Starlette runs them in its thread pool: reading and reducing logs never blocks
the event loop.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from lighter.dashboard.compare import compare
from lighter.dashboard.guard import Guard, allowed_hosts
from lighter.dashboard.settings import BEST, FINAL, LEAF, setting_of, trial_table, value_of
from lighter.dashboard.store import RefusedPath, RunStore, UnknownRun
from lighter.names import LIVE_STATUSES

STATIC = resources.files("lighter.dashboard") / "static"
NO_STORE = {"Cache-Control": "no-store"}  # runs change while the page is open


def plotly_js() -> Path:
    """plotly.min.js from the installed plotly wheel: the page works offline and never asks a CDN. Found, not
    imported: the server needs plotly's file, not its Python package."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("No module named 'plotly'", name="plotly")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)


def compare_json(
    store: RunStore, *, mode: str, metric: str, which: str, by: list[str], higher_is_better: bool
) -> dict[str, Any]:
    """The comparison of settings (`compare`) and what every run reached, as `/api/compare` answers it."""
    runs, reached = store.runs(), {}
    for run in runs:
        with contextlib.suppress(LookupError, ValueError):  # unreadable runs are reported by /api/epochs
            reached[run.id] = store.reached(run.id)
    key = f"{mode}/{metric}"
    trials = trial_table(runs, reached, key=key, which=which, by=by, higher_is_better=higher_is_better)
    table = compare(trials, higher_is_better=higher_is_better)
    members = trials.groupby("setting")["run"].apply(list).to_dict() if len(trials) else {}
    counted = set(trials["run"])
    per_run = {}
    for run in runs:
        final = value_of(reached.get(run.id, {}), key, FINAL, higher_is_better)
        if final is not None:
            best = value_of(reached[run.id], key, BEST, higher_is_better)
            per_run[run.id] = {"final": final[0], "best": best[0], "source": final[1],
                               "setting": setting_of(run, by), "counted": run.id in counted}  # fmt: skip
    settings = [{**_plain(row), "runs": members.get(row["setting"], [])} for row in table.to_dict("records")]
    return {"key": key, "value": which, "by": by, "higher_is_better": higher_is_better, "settings": settings,
            "runs": per_run, "sources": sorted({r["source"] for r in per_run.values()})}  # fmt: skip


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A table's row as JSON takes it: numpy numbers as Python's, NaN as null."""
    row = {key: value.item() if hasattr(value, "item") else value for key, value in row.items()}
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}


def create_app(root: str | Path, host: str = "127.0.0.1", allow_hosts: tuple[str, ...] = ()) -> Starlette:
    """The dashboard's web app over the runs under `root`, answering requests addressed to `host` (see `guard`)."""
    store = RunStore(root)
    page = (STATIC / "index.html").read_text()
    script = (STATIC / "dashboard.js").read_text()

    def index(request: Request) -> Response:
        return Response(page, media_type="text/html", headers=NO_STORE)

    def dashboard_js(request: Request) -> Response:
        return Response(script, media_type="text/javascript", headers=NO_STORE)

    def plotly(request: Request) -> Response:
        return FileResponse(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    def runs(request: Request) -> Response:
        runs = [run.as_dict() for run in store.runs()]
        body = {"root": str(store.root), "live": [status.value for status in LIVE_STATUSES], "runs": runs}
        return Response(json.dumps(body, default=str), media_type="application/json", headers=NO_STORE)

    def epochs(request: Request) -> Response:
        run_id = request.query_params.get("run")
        if run_id is None:
            return _error(400, "missing ?run=<id>; GET /api/runs lists the ids")
        try:
            body = store.epochs_json(run_id)
        except RefusedPath as err:
            return _error(403, str(err))
        except UnknownRun as err:
            return _error(404, str(err))
        except ValueError as err:  # a log pandas cannot read or reduce: say which run and why
            return _error(422, f"run {run_id!r}: {type(err).__name__}: {err}")
        return Response(body, media_type="application/json", headers=NO_STORE)

    async def epochs_many(request: Request) -> Response:
        """POST {"runs": [id, ...]}: several runs' rows in one request, as the page refreshes them."""
        try:
            wanted = (await request.json())["runs"]
            if not isinstance(wanted, list) or not all(isinstance(run_id, str) for run_id in wanted):
                raise TypeError("runs must be a list of run ids")
        except (ValueError, KeyError, TypeError) as err:
            return _error(400, f'expected a JSON body {{"runs": [id, ...]}}: {type(err).__name__}: {err}')
        return Response(await run_in_threadpool(_many, wanted), media_type="application/json", headers=NO_STORE)

    def _many(wanted: list[str]) -> bytes:
        """{"epochs": {id: rows}, "errors": {id: message}}, the rows spliced in as the store cached them."""
        parts, errors = [], {}
        for run_id in dict.fromkeys(wanted):
            try:
                parts.append(json.dumps(run_id).encode() + b":" + store.epochs_json(run_id))
            except (LookupError, ValueError) as err:  # unknown, refused or unreadable: the others still come
                errors[run_id] = str(err)
        return b'{"epochs":{' + b",".join(parts) + b'},"errors":' + json.dumps(errors).encode() + b"}"

    def comparison(request: Request) -> Response:
        """GET ?mode=val&metric=accuracy&value=final|best&by=AXIS (repeated) or by=leaf&best=max|min."""
        query = request.query_params
        mode, metric, which, best = query.get("mode"), query.get("metric"), query.get("value", FINAL), query.get("best")
        if not mode or not metric:
            return _error(400, "missing ?mode=...&metric=...; e.g. /api/compare?mode=val&metric=accuracy&by=leaf")
        if which not in (FINAL, BEST):
            return _error(400, f"value={which}: expected value=final or value=best")
        if best not in ("max", "min"):
            return _error(400, f"best={best}: expected best=max (higher is better) or best=min")
        body = compare_json(store, mode=mode, metric=metric, which=which, by=query.getlist("by") or [LEAF],
                            higher_is_better=best == "max")  # fmt: skip
        return Response(json.dumps(body), media_type="application/json", headers=NO_STORE)

    routes = [
        Route("/", index),
        Route("/static/dashboard.js", dashboard_js),
        Route("/static/plotly.min.js", plotly),
        Route("/api/runs", runs),
        Route("/api/epochs", epochs),
        Route("/api/epochs", epochs_many, methods=["POST"]),
        Route("/api/compare", comparison),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, allowed=allowed_hosts(host, allow_hosts))])
    app.state.store = store
    return app
