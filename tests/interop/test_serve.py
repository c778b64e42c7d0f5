"""`tern serve` process behaviour, and a sanity check of the benchmark's flytekit peer."""

from __future__ import annotations

import signal

from flyteidl.admin import agent_pb2 as admin
from flyteidl.service import agent_pb2_grpc

from tern_interop import (
    create_request,
    get_request,
    lit_int,
    literal_map,
    phase_name,
    simple_type,
    start_tern_server,
    task_template,
)


def test_sigterm_exits_cleanly(tern_bin, logs_dir):
    server = start_tern_server(tern_bin, logs_dir, name="tern-serve-sigterm")
    try:
        server.process.proc.send_signal(signal.SIGTERM)  # the process itself, as Kubernetes does
        code = server.process.proc.wait(timeout=15)
        assert code == 0, f"tern serve exited {code} on SIGTERM\n{server.process.describe()}"
    finally:
        server.process.stop()


def test_noop_echo_benchmark_peer_works_under_flytekit(flytekit_channel):
    """The benchmark compares Tern's echo agent with connectors/noop_echo.py under `pyflyte serve connector`."""
    metadata = agent_pb2_grpc.AgentMetadataServiceStub(flytekit_channel)
    agent = metadata.GetAgent(admin.GetAgentRequest(name="Noop Echo Connector"), timeout=10).agent
    assert [(c.name, c.version) for c in agent.supported_task_categories] == [("echo", 0)]

    stub = agent_pb2_grpc.AsyncAgentServiceStub(flytekit_channel)
    template = task_template("echo", inputs={"i": simple_type("INTEGER")}, outputs={})
    created = stub.CreateTask(create_request(template, literal_map(i=lit_int(1))), timeout=10)
    got = stub.GetTask(get_request("echo", created.resource_meta), timeout=10)
    assert phase_name(got.resource.phase) == "SUCCEEDED"
    assert len(got.resource.outputs.literals) == 0
