"""Fixtures for Tern's Python interop tests.

Peers:
- ``TERN_BIN``: the ``tern`` binary under test (scripts/test.sh builds it and exports the path).
- ``TERN_PYFLYTE``: flytekit's ``pyflyte`` (defaults to the one beside this interpreter), for
  ``pyflyte serve connector``: the reference server and the third-party connector host.

A missing peer skips the tests that need it with a clear message, except under ``CI=true``, where it fails them.
Every process is started in its own process group on a free loopback port and its group is killed in teardown.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

import pytest

from tern_interop import Server, missing_peer, start_flytekit_server, start_tern_server


def _executable(path: Optional[str]) -> Optional[Path]:
    if not path:
        return None
    p = Path(path)
    return p if p.is_file() and os.access(p, os.X_OK) else None


@pytest.fixture(scope="session")
def tern_bin() -> Path:
    raw = os.environ.get("TERN_BIN")
    path = _executable(raw)
    if path is None:
        missing_peer(
            f"the tern binary (TERN_BIN={raw!r} is not an executable file); scripts/test.sh exports it after a "
            "successful `cargo build --bin tern` (by hand: export TERN_BIN=target/debug/tern)"
        )
    return path.resolve()


@pytest.fixture(scope="session")
def pyflyte_bin() -> Path:
    raw = os.environ.get("TERN_PYFLYTE") or str(Path(sys.executable).parent / "pyflyte")
    path = _executable(raw)
    if path is None:
        missing_peer(
            f"flytekit's pyflyte ({raw!r} is not an executable file); "
            "install tests/interop/requirements.txt (scripts/test.sh does) or export TERN_PYFLYTE"
        )
    return path


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("peer-logs")


# Every local agent, the shell, dask and gpu ones opted in explicitly as an operator would (`tern serve` leaves them off by
# default; dask's job records go to the data root's side, not the working directory).
ALL_LOCAL_AGENTS_CONFIG = """
[agents.echo]
[agents.sleep]
[agents.webhook]
[agents.duckdb]
[agents.snowflake]
[agents.bigquery]
[agents.databricks]
[agents.batch]
[agents.ray]
[agents.lepton]
[agents.shell]
enabled = true
[agents.dask]
enabled = true
state_dir = "{dask_state}"
[agents.gpu]
enabled = true
state_dir = "{gpu_state}"
"""


@pytest.fixture(scope="session")
def tern_server(tern_bin, logs_dir):
    """One `tern serve` for the session, hosting every local agent (shell enabled explicitly)."""
    config = logs_dir / "tern-all-agents.toml"
    data_root = logs_dir / "tern-data"
    config.write_text(ALL_LOCAL_AGENTS_CONFIG.format(dask_state=logs_dir / "dask-state", gpu_state=logs_dir / "gpu-state")
                      + f'\n[data_store]\nroot = "{data_root}"\n')
    server = start_tern_server(tern_bin, logs_dir, ["--config", str(config)])
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def flytekit_server(pyflyte_bin, logs_dir):
    """flytekit's own connector server (`pyflyte serve connector`) with our test connectors loaded.

    It hosts flytekit's built-in `webhook` connector (the reference for Tern's webhook agent), `py_double`
    (a third-party connector for the engine tests) and `noop_echo` (the benchmark peer)."""
    server = start_flytekit_server(pyflyte_bin, logs_dir, ["py_double", "noop_echo"])
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def tern_channel(tern_server):
    with tern_server.channel() as channel:
        yield channel


@pytest.fixture(scope="session")
def flytekit_channel(flytekit_server):
    with flytekit_server.channel() as channel:
        yield channel


@pytest.fixture(params=["tern", "flytekit"])
def agent_server(request) -> Server:
    """Differential fixture: the same test runs against Tern and against flytekit's reference server."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def agent_channel(agent_server):
    with agent_server.channel() as channel:
        yield channel


# --------------------------------------------------------------------------------------------------------------
# a local HTTP endpoint for webhook tests
# --------------------------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))


@dataclass
class HttpSink:
    """Answers 200 with a fixed body, except paths starting with /fail (500) ; records every request."""

    url: str
    requests: List[RecordedRequest] = field(default_factory=list)
    ok_body: str = '{"ok": true, "from": "tern-interop-sink"}'
    fail_body: str = "sink says no"

    def only_request(self, context: object = None) -> RecordedRequest:
        assert len(self.requests) == 1, f"expected exactly one HTTP request, got {self.requests}; context: {context}"
        return self.requests[0]


@pytest.fixture
def http_sink():
    sink = HttpSink(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            sink.requests.append(RecordedRequest(
                method=self.command, path=parts.path, query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()}, body=body,
            ))
            failing = parts.path.startswith("/fail")
            payload = (sink.fail_body if failing else sink.ok_body).encode("utf-8")
            self.send_response(500 if failing else 200)
            self.send_header("Content-Type", "text/plain" if failing else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _handle
        do_POST = _handle

        def log_message(self, *args):  # keep pytest output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    sink.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="http-sink", daemon=True)
    thread.start()
    yield sink
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


# --------------------------------------------------------------------------------------------------------------
# attach peer logs to failing tests
# --------------------------------------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    seen = set()
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, Server) and id(value) not in seen:
            seen.add(id(value))
            report.sections.append((f"{value.kind} server log ({value.address})", value.process.log_text(8000)))
