"""minilake 1.9.0 (a local Databricks API emulator) for Tern's Databricks tests.

Serves minilake's own app (`minilake.app.create_app`, uvicorn with the h11 parser, as its CLI does) on
127.0.0.1:<port>, plus ONE test-only hook, because minilake cannot produce most run states itself (its runs go
PENDING -> RUNNING -> TERMINATED with SUCCESS/FAILED/TIMEDOUT/CANCELED only):

    POST /_tern_test/drive {"state": NAME}   every run submitted from now on is not executed, and `runs/get`
                                             reports NAME for it (the Databricks agent's state-table names:
                                             "QUEUED", "TERMINATED/MAXIMUM_CONCURRENT_RUNS_REACHED",
                                             "status/TERMINATED/DRIVER_ERROR", or any undeclared text)
    POST /_tern_test/drive {"state": null}   back to minilake's own behaviour

Submission, idempotency tokens, cancel, runs/list and get-output are minilake's own code, untouched; only the
`state`/`status` objects of driven runs' `runs/get` answers are replaced.

Usage: python minilake_peer.py --port PORT  (environment: MINILAKE_JOB_EXECUTOR=subprocess, MINILAKE_DATA_DIR, ...)
"""

import argparse
import json

import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse
from minilake.app import create_app
from minilake.services import jobs

DRIVEN = {"state": None}
DRIVEN_RUNS = {}  # run_id -> state name

_real_execute_run = jobs._execute_run


async def _execute_run(run_id, argv):
    state = DRIVEN["state"]
    if state is None:
        return await _real_execute_run(run_id, argv)
    DRIVEN_RUNS[run_id] = state  # not executed: runs/get reports the driven state


jobs._execute_run = _execute_run


def _apply(answer: dict, name: str) -> None:
    message = "state driven by Tern's test hook"
    if name.startswith("status/"):
        rest = name[len("status/"):]
        if rest.startswith("TERMINATED/"):
            code = rest[len("TERMINATED/"):]
            kind = "SUCCESS" if code.startswith("SUCCESS") else "CLIENT_ERROR"
            if code.startswith("type/"):
                # The agent's entry for a termination code newer than its table: such a code, of that type.
                code, kind = "TERN_TEST_UNLISTED_CODE", code[len("type/"):]
            answer["status"] = {"state": "TERMINATED",
                                "termination_details": {"code": code, "type": kind, "message": message}}
        else:
            answer["status"] = {"state": rest}
    elif name.startswith("TERMINATED/"):
        answer["state"] = {"life_cycle_state": "TERMINATED", "result_state": name[len("TERMINATED/"):],
                           "state_message": message}
    else:
        answer["state"] = {"life_cycle_state": name, "state_message": message}


def build_app():
    app = create_app()

    @app.post("/_tern_test/drive")
    async def drive(request: Request):
        body = await request.json()
        DRIVEN["state"] = body.get("state")
        return {"state": DRIVEN["state"]}

    @app.middleware("http")
    async def driven_states(request: Request, call_next):
        response = await call_next(request)
        if request.url.path.endswith("/jobs/runs/get") and response.status_code == 200:
            try:
                run_id = int(request.query_params.get("run_id", ""))
            except ValueError:
                return response
            name = DRIVEN_RUNS.get(run_id)
            if name is not None:
                body = b"".join([chunk async for chunk in response.body_iterator])
                answer = json.loads(body)
                _apply(answer, name)
                return JSONResponse(answer)
        return response

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(build_app(), host=args.host, port=args.port, http="h11", log_level="warning")


if __name__ == "__main__":
    main()
