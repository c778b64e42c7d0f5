"""fakesnow 0.12.1's server, wrapped for the Snowflake agent's tests (test side only: no Tern code runs here).

    python fakesnow_shim.py --host 127.0.0.1 --port 8085

Runs in its own virtualenv (tests/interop/requirements-fakesnow.txt: fakesnow's pins clash with flytekit's). fakesnow
executes every statement in DuckDB and speaks the Snowflake connector's HTTP protocol; this ASGI wrapper adds what it
lacks, each piece marked below as COMPAT (a field real Snowflake sends that the `snowflake-api` crate requires) or
EMULATES (a documented Snowflake behaviour fakesnow does not have, so the agent's code path for it can be exercised):

- COMPAT login: `sessionId` (integer), `masterToken`, `validityInSeconds`, `masterValidityInSeconds`,
  `sessionInfo.roleName`/`warehouseName`.
- COMPAT query results: `returned`, `finalRoleName`, `finalWarehouseName`, `version`; errors: `age`,
  `internalError`, `queryId`, `sqlState`, `line`, `pos`.
- EMULATES asynchronous execution (`asyncExec: true`): real Snowflake answers code 333334 with the query id at once
  and reports progress through `GET /monitoring/queries/{id}`; fakesnow runs the statement synchronously and answers
  with its result. The shim lets fakesnow run it, then answers the 333334 form; a statement fakesnow rejected gets a
  query id and reports FAILED_WITH_ERROR (with Snowflake's `errorCode`/`errorMessage`) on the monitoring endpoint,
  as an asynchronously submitted failing query does on Snowflake. `POST /tern-test/config {"async_replies": false}`
  turns this off (fakesnow's own synchronous answers).
- EMULATES `SELECT SYSTEM$CANCEL_QUERY('<id>')` (fakesnow has no such function): answers Snowflake's one-row text
  result; a query the test drove into a running state is then reported ABORTED.
- Test controls (`/tern-test/...`): `POST state {"status": S}` makes the monitoring endpoint report S for every query
  (S = "NO_DATA" answers an empty `queries` list, as Snowflake does for a query it has no record of; null restores
  fakesnow's answers) — the conformance kit's `drive_state`; `GET requests` lists every login and query request
  received (SQL text, asyncExec, statement parameters, binding types and values; never a password or token),
  so tests count submissions AT the emulator; `POST reset` clears that list.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import secrets
import threading
import uuid
from typing import Any, Dict, List, Optional

import uvicorn
from fakesnow.server import app as fakesnow_app

_CANCEL = re.compile(r"^\s*select\s+system\$cancel_query\s*\(\s*'([^']*)'\s*\)\s*;?\s*$", re.IGNORECASE)
_ASYNC_MESSAGE = ("Asynchronous execution in progress. Use provided query id to perform query monitoring and "
                  "management.")
_RUNNING = {"RUNNING", "QUEUED", "RESUMING_WAREHOUSE", "QUEUED_REPARING_WAREHOUSE", "BLOCKED", "NO_DATA",
            "RESTARTED", "DISCONNECTED", "ABORTING"}


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: List[Dict[str, Any]] = []
        self.driven: Optional[str] = None
        self.async_replies = True
        self.failed: Dict[str, Dict[str, str]] = {}  # query id -> {errorCode, errorMessage, sqlState}
        self.cancelled: set[str] = set()
        self.sessions = 0


STATE = State()


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)


async def _call(app, scope, body: bytes):
    """Runs the wrapped app on `body`; returns (status, headers, response body)."""
    sent = False
    out: Dict[str, Any] = {"status": 500, "headers": [], "body": b""}

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"]


async def _respond(send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _json(body: bytes, headers) -> Any:
    if (b"content-encoding", b"gzip") in [(k.lower(), v.lower()) for k, v in headers]:
        body = gzip.decompress(body)
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


def _query_string(scope) -> Dict[str, str]:
    from urllib.parse import parse_qsl
    return dict(parse_qsl(scope.get("query_string", b"").decode()))


def _result(query_id: str, columns: List[str], rows: List[List[Optional[str]]]) -> Dict[str, Any]:
    """A JSON-rowset result in Snowflake's shape (text columns)."""
    return {
        "data": {
            "parameters": [], "rowtype": [
                {"name": c, "database": "", "schema": "", "table": "", "nullable": True, "type": "text",
                 "byteLength": 16777216, "length": 16777216, "scale": None, "precision": None, "collation": None}
                for c in columns],
            "rowset": rows, "total": len(rows), "returned": len(rows), "queryId": query_id,
            "queryResultFormat": "json", "statementTypeId": 4096, "finalDatabaseName": None,
            "finalSchemaName": None, "finalWarehouseName": None, "finalRoleName": "PUBLIC", "version": 1,
        },
        "code": None, "message": None, "success": True,
    }


def _patch_query_response(payload: Dict[str, Any]) -> Dict[str, Any]:
    data = payload.get("data")
    if payload.get("success") and isinstance(data, dict):  # COMPAT: fields snowflake-api requires
        rows = data.get("rowset")
        data.setdefault("returned", len(rows) if isinstance(rows, list) else data.get("total", 0))
        data.setdefault("finalRoleName", "PUBLIC")
        data.setdefault("finalWarehouseName", None)
        data.setdefault("version", 1)
        data.setdefault("parameters", [])
    elif isinstance(data, dict) and "errorCode" in data:
        data.setdefault("age", 0)
        data.setdefault("internalError", False)
        data.setdefault("queryId", str(uuid.uuid4()))
        data.setdefault("sqlState", "")
        data.setdefault("line", None)
        data.setdefault("pos", None)
    return payload


async def app(scope, receive, send):
    if scope["type"] != "http":
        return await fakesnow_app(scope, receive, send)
    path: str = scope["path"]
    method: str = scope["method"]
    body = await _read_body(receive)

    # ---- test controls ---------------------------------------------------------------------------------------
    if path == "/tern-test/requests" and method == "GET":
        with STATE.lock:
            return await _respond(send, 200, {"requests": list(STATE.requests)})
    if path == "/tern-test/reset" and method == "POST":
        with STATE.lock:
            STATE.requests.clear()
        return await _respond(send, 200, {"ok": True})
    if path == "/tern-test/state" and method == "POST":
        with STATE.lock:
            STATE.driven = (json.loads(body or b"{}") or {}).get("status")
        return await _respond(send, 200, {"status": STATE.driven})
    if path == "/tern-test/config" and method == "POST":
        with STATE.lock:
            STATE.async_replies = bool((json.loads(body or b"{}") or {}).get("async_replies", True))
        return await _respond(send, 200, {"async_replies": STATE.async_replies})

    # ---- login ---------------------------------------------------------------------------------------------------
    if path == "/session/v1/login-request":
        request = _json(body, scope.get("headers", [])) or {}
        data = request.get("data") or {}
        query = _query_string(scope)
        with STATE.lock:
            STATE.sessions += 1
            session_id = STATE.sessions
            STATE.requests.append({
                "kind": "login", "login_name": data.get("LOGIN_NAME"), "account_name": data.get("ACCOUNT_NAME"),
                "authenticator": data.get("AUTHENTICATOR", "SNOWFLAKE"), "has_password": "PASSWORD" in data,
                "has_token": "TOKEN" in data, "fields": sorted(data), "query": {k: v for k, v in query.items()
                                                        if k in ("warehouse", "databaseName", "schemaName", "roleName")},
            })
        status, headers, out = await _call(fakesnow_app, scope, body)
        payload = json.loads(out)
        if payload.get("success"):  # COMPAT
            d = payload["data"]
            d.setdefault("sessionId", session_id)
            d.setdefault("masterToken", secrets.token_urlsafe(32))
            d.setdefault("validityInSeconds", 3600)
            d.setdefault("masterValidityInSeconds", 14400)
            info = d.setdefault("sessionInfo", {})
            info.setdefault("roleName", query.get("roleName", "PUBLIC"))
            info.setdefault("warehouseName", query.get("warehouse"))
        return await _respond(send, status, payload)

    # ---- queries -------------------------------------------------------------------------------------------------
    if path == "/queries/v1/query-request" and method == "POST":
        request = _json(body, scope.get("headers", [])) or {}
        sql = request.get("sqlText", "")
        async_exec = bool(request.get("asyncExec"))
        record = {
            "kind": "query", "sql": sql, "async": async_exec, "parameters": request.get("parameters") or {},
            "bindings": request.get("bindings") or {}, "describe_only": bool(request.get("describeOnly")),
            "sequence_id": request.get("sequenceId"), "request_id": _query_string(scope).get("requestId"),
        }
        with STATE.lock:
            STATE.requests.append(record)
        cancel = _CANCEL.match(sql)
        if cancel:  # EMULATES SYSTEM$CANCEL_QUERY
            qid = cancel.group(1)
            with STATE.lock:
                running = STATE.driven in _RUNNING and qid not in STATE.cancelled
                if running:
                    STATE.cancelled.add(qid)
            text = f"query [{qid}] terminated." if running else "Identified SQL statement is not currently executing."
            return await _respond(send, 200, _result(str(uuid.uuid4()), [f"SYSTEM$CANCEL_QUERY('{qid}')"], [[text]]))
        status, headers, out = await _call(fakesnow_app, scope, body)
        try:
            payload = _patch_query_response(json.loads(out))
        except ValueError:
            return await _respond(send, status, {"success": False, "code": "000000", "message": out.decode(errors="replace"), "data": None})
        record["query_id"] = (payload.get("data") or {}).get("queryId")
        record["success"] = bool(payload.get("success"))
        with STATE.lock:
            async_replies = STATE.async_replies
        if async_exec and async_replies and status == 200:  # EMULATES asynchronous execution
            data = payload.get("data") or {}
            qid = data.get("queryId") or str(uuid.uuid4())
            if not payload.get("success"):
                with STATE.lock:
                    STATE.failed[qid] = {"errorCode": str(payload.get("code") or data.get("errorCode") or ""),
                                         "errorMessage": payload.get("message") or "",
                                         "sqlState": data.get("sqlState") or ""}
            return await _respond(send, 200, {"code": "333334", "message": _ASYNC_MESSAGE, "success": True,
                                              "data": {"queryId": qid, "getResultUrl": f"/queries/{qid}/result"}})
        return await _respond(send, status, payload)

    # ---- monitoring ----------------------------------------------------------------------------------------------
    if path.startswith("/monitoring/queries/") and method == "GET":
        qid = path.rsplit("/", 1)[-1]
        with STATE.lock:
            STATE.requests.append({"kind": "monitoring", "query_id": qid})
            driven, cancelled, failed = STATE.driven, qid in STATE.cancelled, STATE.failed.get(qid)
        if cancelled:
            return await _respond(send, 200, {"data": {"queries": [{"id": qid, "status": "ABORTED",
                                  "errorCode": "000604", "errorMessage": "SQL execution canceled"}]}, "success": True})
        if driven == "NO_DATA":
            return await _respond(send, 200, {"data": {"queries": []}, "success": True})
        if driven:
            query: Dict[str, Any] = {"id": qid, "status": driven}
            if driven in ("FAILED_WITH_ERROR", "FAILED_WITH_INCIDENT"):
                query.update(errorCode="100038", errorMessage="Numeric value 'x' is not recognized (driven by the test)")
            return await _respond(send, 200, {"data": {"queries": [query]}, "success": True})
        if failed:
            return await _respond(send, 200, {"data": {"queries": [{"id": qid, "status": "FAILED_WITH_ERROR",
                                  "errorCode": failed["errorCode"], "errorMessage": failed["errorMessage"]}],
                                  "sqlState": failed["sqlState"]}, "success": True})

    return await _call_through(scope, body, send)


async def _call_through(scope, body: bytes, send) -> None:
    status, headers, out = await _call(fakesnow_app, scope, body)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": out})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
