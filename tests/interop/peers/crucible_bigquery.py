"""Crucible's BigQuery REST v2 emulator (crucible-emulator[server]==0.1.0a2), started for Tern's tests.

Run with the Python of the virtualenv scripts/test.sh installs it in ($TERN_CRUCIBLE_PYTHON):

    python tests/interop/peers/crucible_bigquery.py [--host 127.0.0.1] [--port 0]

It binds the port (0 = a free one), prints `PORT <n>` on stdout once it listens, and serves BigQuery
under http://HOST:PORT/bigquery/v2. Everything BigQuery-shaped is Crucible's own code (its job store,
its SQL translation onto DuckDB, its REST handlers and error bodies). This file adds a thin test-side
shim for what Crucible 0.1.0a2 does not have and Tern's tests need; each piece is marked SHIM:

1. Named query parameters (`parameterMode: NAMED`, `queryParameters`): Crucible refuses them
   ("Not supported by Crucible"), although its engine binds named parameters. The shim decodes
   BigQuery's REST form into typed Python values and hands them to Crucible's pipeline.
2. jobs.list (`GET /bigquery/v2/projects/{p}/jobs`): Crucible has no listing. The shim answers it from
   Crucible's own job store, so tests count the jobs that really exist at the emulator.
3. States Crucible never reports (it finishes every job inside jobs.insert):
   - `POST /_tern/state {"state": "RUNNING" | "PENDING" | "DONE" | "DONE:<reason>" | <anything> | null}`
     makes every job report that state from then on (`DONE:<reason>` = DONE with an errorResult of that
     reason), for the conformance kit's drive_state;
   - a query job whose SQL contains `--hold-marker` (default `TERN_HOLD`) reports RUNNING until it is
     cancelled: a stand-in for a long query;
   - jobs.cancel of a job reported PENDING/RUNNING makes it DONE with BigQuery's cancellation error
     (reason `stopped`); Crucible's own cancel changes nothing (its jobs are always done).
   `GET /_tern/stats` counts jobs.insert and jobs.cancel requests.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import decimal
import socket
import sys
import threading
from typing import Any

import duckdb
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crucible.engine import Engine, Pipeline
from crucible.server import app as crucible_app
from crucible.server.bigquery import jobs as crucible_jobs
from crucible.server.bigquery.app import API, BigQueryServer

CANCELLED = {
    "reason": "stopped",
    "message": "Job execution was cancelled: User requested cancellation",
}


class Shim:
    def __init__(self, hold_marker: str) -> None:
        self.hold_marker = hold_marker
        self.lock = threading.Lock()
        self.forced: str | None = None
        self.cancelled: set[tuple[str, str]] = set()
        self.inserts = 0
        self.cancels = 0

    def reported_status(self, job: crucible_jobs.Job) -> dict[str, Any] | None:
        """The status to report instead of Crucible's, or None."""
        with self.lock:
            if (job.project, job.job_id) in self.cancelled:
                return {"state": "DONE", "errorResult": CANCELLED, "errors": [CANCELLED]}
            if self._held(job):
                return {"state": "RUNNING"}
            if self.forced is None:
                return None
            state, _, reason = self.forced.partition(":")
            if not reason:
                return {"state": state}
            error = {"reason": reason, "message": f"{reason} (state driven by the test)"}
            return {"state": state, "errorResult": error, "errors": [error]}

    def _held(self, job: crucible_jobs.Job) -> bool:
        query = job.configuration.get("query")
        return isinstance(query, dict) and self.hold_marker in str(query.get("query", ""))

    def cancel(self, job: crucible_jobs.Job) -> None:
        status = self.reported_status(job)
        with self.lock:
            self.cancels += 1
            if status is not None and status.get("state") in ("PENDING", "RUNNING"):
                self.cancelled.add((job.project, job.job_id))


SHIM = Shim("TERN_HOLD")
_current = threading.local()


# SHIM 1: named query parameters ------------------------------------------------------------------
def _value(ptype: dict[str, Any], pvalue: dict[str, Any] | None) -> Any:
    kind = str(ptype.get("type", "STRING")).upper()
    pvalue = pvalue or {}
    if kind == "ARRAY":
        element = ptype.get("arrayType") or {}
        return [_value(element, v) for v in pvalue.get("arrayValues") or []]
    raw = pvalue.get("value")
    if raw is None:
        return None
    text = str(raw)
    if kind in ("INT64", "INTEGER"):
        return int(text)
    if kind in ("FLOAT64", "FLOAT"):
        return float(text)
    if kind in ("NUMERIC", "BIGNUMERIC"):
        return decimal.Decimal(text)
    if kind in ("BOOL", "BOOLEAN"):
        return text.lower() == "true"
    if kind == "BYTES":
        return base64.b64decode(text)
    if kind == "DATE":
        return datetime.date.fromisoformat(text)
    if kind == "DATETIME":
        return datetime.datetime.fromisoformat(text)
    if kind == "TIMESTAMP":
        return datetime.datetime.fromisoformat(text.replace(" UTC", "+00:00"))
    return text


# BigQuery parameter type -> the DuckDB type Crucible stores it as (so INT64 binds as BIGINT, not
# as the INTEGER DuckDB would infer from a small Python int).
_DUCKDB_TYPES = {
    "INT64": "BIGINT", "INTEGER": "BIGINT", "FLOAT64": "DOUBLE", "FLOAT": "DOUBLE", "BOOL": "BOOLEAN",
    "BOOLEAN": "BOOLEAN", "STRING": "VARCHAR", "BYTES": "BLOB", "DATE": "DATE", "DATETIME": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMPTZ", "NUMERIC": "DECIMAL(38, 9)", "BIGNUMERIC": "VARCHAR",
}


def _duckdb_type(ptype: dict[str, Any]) -> str:
    kind = str(ptype.get("type", "STRING")).upper()
    if kind == "ARRAY":
        return _duckdb_type(ptype.get("arrayType") or {}) + "[]"
    if kind not in _DUCKDB_TYPES:
        raise crucible_jobs.CrucibleUnsupportedError(f"query parameter type {kind}")
    return _DUCKDB_TYPES[kind]


def _parameters(config: dict[str, Any]) -> dict[str, Any] | None:
    params = config.get("queryParameters")
    if not params:
        return None
    if config.get("parameterMode", "NAMED") != "NAMED":
        raise crucible_jobs.CrucibleUnsupportedError("positional query parameters")
    out = {}
    for p in params:
        ptype = p.get("parameterType") or {}
        value = _value(ptype, p.get("parameterValue"))
        out[p["name"]] = duckdb.Value(value, duckdb.sqltype(_duckdb_type(ptype)))
    return out


crucible_jobs._IGNORED_QUERY_KEYS = crucible_jobs._IGNORED_QUERY_KEYS | {"queryParameters", "parameterMode"}
_run_query = crucible_jobs.Runner.run_query


def run_query(self: crucible_jobs.Runner, job: crucible_jobs.Job) -> crucible_jobs.Job:
    query = job.configuration.get("query") or {}
    try:
        _current.params = _parameters(query)
    except crucible_jobs.CrucibleError as exc:
        job.fail(exc)
        job.ended_ms = crucible_jobs.now_ms()
        self.store.finished(job, job)
        return job
    try:
        return _run_query(self, job)
    finally:
        _current.params = None


_execute = Pipeline.execute


def execute(self: Pipeline, session: Any, sql: str, params: Any = None) -> Any:
    if params is None:
        params = getattr(_current, "params", None)
    return _execute(self, session, sql, params)


crucible_jobs.Runner.run_query = run_query  # type: ignore[method-assign]
Pipeline.execute = execute  # type: ignore[method-assign]

# SHIM 3: reported states, cancellation ----------------------------------------------------------
_job_resource = BigQueryServer.job_resource


def job_resource(self: BigQueryServer, job: crucible_jobs.Job, base: str) -> dict[str, Any]:
    resource = _job_resource(self, job, base)
    status = SHIM.reported_status(job)
    if status is not None:
        resource["status"] = status
    return resource


BigQueryServer.job_resource = job_resource  # type: ignore[method-assign]
_jobs_insert = BigQueryServer.jobs_insert
_jobs_cancel = BigQueryServer.jobs_cancel
_get_query_results = BigQueryServer.get_query_results


async def jobs_insert(self: BigQueryServer, request: Request) -> Any:
    with SHIM.lock:
        SHIM.inserts += 1
    return await _jobs_insert(self, request)


async def jobs_cancel(self: BigQueryServer, request: Request) -> Any:
    try:
        job = self.store.get(request.path_params["project"], request.path_params["job"])
    except crucible_jobs.CrucibleError:
        job = None
    if job is not None:
        SHIM.cancel(job)
    return await _jobs_cancel(self, request)


async def get_query_results(self: BigQueryServer, request: Request) -> Any:
    try:
        job = self.store.get(request.path_params["project"], request.path_params["job"])
    except crucible_jobs.CrucibleError:
        job = None
    status = SHIM.reported_status(job) if job is not None else None
    if status is not None and status.get("state") != "DONE":
        return JSONResponse({"kind": "bigquery#getQueryResultsResponse", "jobComplete": False,
                             "jobReference": self._reference(job)})
    return await _get_query_results(self, request)


BigQueryServer.jobs_insert = jobs_insert  # type: ignore[method-assign]
BigQueryServer.jobs_cancel = jobs_cancel  # type: ignore[method-assign]
BigQueryServer.get_query_results = get_query_results  # type: ignore[method-assign]


# SHIM 2: jobs.list, and the test's own routes ---------------------------------------------------
async def jobs_list(self: BigQueryServer, request: Request) -> JSONResponse:
    project = request.path_params["project"]
    base = self._base(request)
    with self.store._lock:
        found = [job for (p, _), job in self.store._jobs.items() if p == project]
    entries = []
    for job in sorted(found, key=lambda j: j.created_ms, reverse=True):
        resource = self.job_resource(job, base)
        entries.append({
            "kind": "bigquery#job",
            "id": resource["id"],
            "jobReference": resource["jobReference"],
            "state": resource["status"].get("state"),
            "status": resource["status"],
            "configuration": resource["configuration"],
            "statistics": resource["statistics"],
        })
    return JSONResponse({"kind": "bigquery#jobList", "etag": "tern-shim", "jobs": entries})


async def drive_state(request: Request) -> JSONResponse:
    body = await request.json()
    with SHIM.lock:
        SHIM.forced = body.get("state")
    return JSONResponse({"state": SHIM.forced})


async def stats(request: Request) -> JSONResponse:
    with SHIM.lock:
        return JSONResponse({"inserts": SHIM.inserts, "cancels": SHIM.cancels, "state": SHIM.forced})


_routes = BigQueryServer.routes


def routes(self: BigQueryServer) -> list[Any]:
    async def listing(request: Request) -> JSONResponse:
        return await jobs_list(self, request)

    return [
        Route(f"{API}/jobs", listing, methods=["GET"]),
        Route("/_tern/state", drive_state, methods=["POST"]),
        Route("/_tern/stats", stats, methods=["GET"]),
        *_routes(self),
    ]


BigQueryServer.routes = routes  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--hold-marker", default="TERN_HOLD")
    args = parser.parse_args()
    SHIM.hold_marker = args.hold_marker
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    app = crucible_app.create_app("bigquery", Engine(None))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
