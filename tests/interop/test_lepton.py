"""The Lepton agent as FlytePropeller sees it: real flytekitplugins-dgxc-lepton 1.16.31 tasks serialized with flytekit
(tests/interop/peers/lepton_templates.py, in $TERN_LEPTON_PYTHON's virtualenv), sent through flyteidl's stubs to
`tern serve`, whose Lepton agent calls the Lepton REST server of the agent's tests run as a process
($TERN_LEPTON_SERVER: agents/lepton/examples/lepton_test_server.rs, which serves the shapes of the leptonai SDK; no
Lepton emulator exists). Deployments are counted at that server, also across a restart of `tern serve`.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
from flyteidl.admin import agent_pb2 as admin
from flyteidl.core import literals_pb2
from flyteidl.service import agent_pb2_grpc
from google.protobuf.json_format import MessageToDict

from tern_interop import (
    HERE,
    ManagedProcess,
    TernServers,
    child_env,
    create_request,
    delete_request,
    explain,
    get_request,
    missing_peer,
    phase_name,
    poll_until,
    propeller_metadata,
    read_templates,
    run_command,
)

PEERS = HERE / "peers"
WORKSPACE = "tern-test-ws"  # the test server's (agents/lepton/tests/support/lepton_server.rs)
TOKEN = "lepton-test-token-0123"
DEPLOY = "lepton_endpoint_deployment_task"
DELETE = "lepton_endpoint_deletion_task"
TERMINAL = ("SUCCEEDED", "FAILED", "RETRYABLE_FAILED", "ABORTED")


def peer_path(variable: str, what: str) -> Path:
    raw = os.environ.get(variable, "")
    if not raw or not Path(raw).is_file():
        missing_peer(f"{what} ({variable}={raw!r} is not a file); scripts/test.sh builds it and exports {variable}")
    return Path(raw)


class LeptonServer:
    def __init__(self, binary: Path, logs_dir: Path):
        self.process = ManagedProcess("lepton-test-server", [binary], logs_dir / "lepton-test-server.log")
        found = poll_until(lambda: re.search(r"LEPTON_URL=(\S+)", self.process.log_text()),
                           lambda m: m is not None or not self.process.alive(), timeout=30)
        assert found, f"the Lepton test server did not start:\n{self.process.log_text()}"
        self.url = found.group(1)

    def created(self) -> int:
        with urllib.request.urlopen(f"{self.url}/_tern_test/count", timeout=10) as r:
            return json.load(r)["created"]


@pytest.fixture(scope="module")
def lepton(logs_dir):
    server = LeptonServer(peer_path("TERN_LEPTON_SERVER", "the Lepton test server"), logs_dir)
    yield server
    server.process.stop()


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict:
    python = peer_path("TERN_LEPTON_PYTHON", "flytekit with flytekitplugins-dgxc-lepton")
    out = tmp_path_factory.mktemp("lepton-templates")
    result = run_command([python, PEERS / "lepton_templates.py", out], timeout=300,
                         env=child_env({"PYTHONPATH": str(PEERS), "LEPTON_PLATFORM_VALIDATION": "false"}))
    assert result.returncode == 0, explain(result)
    return read_templates(out)


@pytest.fixture
def tern(tern_bin, logs_dir, tmp_path, lepton, monkeypatch):
    monkeypatch.setenv("TERN_TEST_LEPTON_TOKEN", TOKEN)
    config = tmp_path / "tern.toml"
    config.write_text(f'[agents.lepton]\nworkspace_id = "{WORKSPACE}"\ntoken = "env:TERN_TEST_LEPTON_TOKEN"\n'
                      f'api_url = "{lepton.url}"\ndashboard_url = "https://dashboard.lepton.test"\n')
    starter = TernServers(tern_bin, logs_dir, config, "tern-serve-lepton")
    yield starter
    starter.stop_all()


def wait_done(stub, task_type: str, meta: bytes):
    return poll_until(lambda: stub.GetTask(get_request(task_type, meta), timeout=30).resource,
                      lambda r: phase_name(r.phase) in TERMINAL, timeout=60, interval=0.2)


def o0(resource) -> str:
    return resource.outputs.literals["o0"].scalar.primitive.string_value


def test_templates_are_the_plugins(templates):
    web = templates["deploy_web"]
    assert (web.type, web.task_type_version) == (DEPLOY, 0)
    custom = MessageToDict(web.custom)
    assert custom["endpoint_name"] == "interop-web" and custom["deployment_type"] == "custom", custom
    assert not web.HasField("container"), "the plugin's tasks run nothing of flytekit's: no container"
    assert list(web.interface.outputs.variables) == ["o0"]
    assert (templates["delete_web"].type, MessageToDict(templates["delete_web"].custom)) == (DELETE, {"endpoint_name": "interop-web"})


def test_deploy_then_delete_through_tern_serve(tern, templates, lepton):
    stub = agent_pb2_grpc.AsyncAgentServiceStub(tern().channel())
    web = templates["deploy_web"]
    before = lepton.created()
    meta = stub.CreateTask(create_request(web, literals_pb2.LiteralMap(), propeller_metadata(web, "lepton-web")),
                           timeout=30).resource_meta
    assert TOKEN.encode() not in meta
    done = wait_done(stub, DEPLOY, meta)
    assert phase_name(done.phase) == "SUCCEEDED", done
    assert o0(done) == f"https://{WORKSPACE}-interop-web.xenon.lepton.run"
    assert [(l.name, l.uri) for l in done.log_links] == [
        ("Lepton Console", f"https://dashboard.lepton.test/workspace/{WORKSPACE}/compute/deployments/detail/interop-web/replicas/list")]
    assert lepton.created() == before + 1
    chunks = list(stub.GetTaskLogs(admin.GetTaskLogsRequest(task_type=DEPLOY, resource_meta=meta,
                                                            task_category=admin.TaskCategory(name=DEPLOY, version=0)),
                                   timeout=30))
    lines = [line.message for c in chunks if c.HasField("body") for line in c.body.structured_lines]
    assert lines and lines[-1] == "interop-web: serving on :8080", lines

    delete = templates["delete_web"]
    meta = stub.CreateTask(create_request(delete, literals_pb2.LiteralMap(), propeller_metadata(delete, "lepton-web", "n1")),
                           timeout=30).resource_meta
    gone = wait_done(stub, DELETE, meta)
    assert phase_name(gone.phase) == "SUCCEEDED", gone
    assert o0(gone) == "Successfully deleted endpoint: interop-web"


def test_a_repeated_create_after_a_restart_is_one_deployment_and_abort_deletes_it(tern, templates, lepton):
    llm = templates["deploy_llm"]
    before = lepton.created()
    req = create_request(llm, literals_pb2.LiteralMap(), propeller_metadata(llm, "lepton-restart"))
    metas, stub = tern.creates_across_a_restart(req)
    assert lepton.created() == before + 1, "one deployment at Lepton for three creates across a restart"
    assert all(b'"name":"interop-llm"' in m for m in metas), metas
    stub.DeleteTask(delete_request(DEPLOY, metas[2]), timeout=30)
    stub.DeleteTask(delete_request(DEPLOY, metas[2]), timeout=30)
    aborted = wait_done(stub, DEPLOY, metas[0])
    assert phase_name(aborted.phase) == "ABORTED", aborted
