"""Routing across deployments and regions with real processes: two regional `tern serve` gateways, a real
`pyflyte serve connector`, and a front `tern serve` routing to them by project, domain and label; the preferred
endpoint killed mid-run; `tern run --config` using the same routes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import agent_pb2 as admin
from flyteidl.service import agent_pb2_grpc

from tern_interop import (
    WORKFLOWS_DIR,
    create_request,
    explain,
    get_request,
    lit_duration,
    lit_int,
    literal_map,
    phase_name,
    poll_until,
    propeller_metadata,
    run_command,
    simple_type,
    start_flytekit_server,
    start_tern_server,
    task_template,
)

REGIONAL = "[agents.echo]\n[agents.sleep]\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def regional(tern_bin, logs_dir, tmp: Path, name: str):
    return start_tern_server(tern_bin, logs_dir, ["--config", str(write(tmp / f"{name}.toml", REGIONAL))], name=name)


def front_config(eu: str, us: str, flytekit: str) -> str:
    return f"""
[server]
region = "eu-west-1"

[agents.echo]

[[routes]]
name = "ml-project"
project = "ml"
target = "group:compute"

[[routes]]
name = "production-sleeps"
task_type = "sleep"
domain = "production"
target = "group:compute"

[[routes]]
name = "python-runtime"
labels = {{ runtime = "python" }}
target = "group:flytekit"

[[routes]]
name = "py-double"
task_type = "py_double"
target = "group:flytekit"

[groups.compute]
endpoints = [
  {{ url = "http://{us}", region = "us-east-1" }},
  {{ url = "http://{eu}", region = "eu-west-1" }},
]
health_check_interval = "300ms"
eject_after_failures = 1

[groups.flytekit]
endpoints = [{{ url = "http://{flytekit}", region = "eu-west-1" }}]
"""


def metadata(template, project: str, domain: str, labels=None, node: str = "n0"):
    meta = propeller_metadata(template, node_id=node)
    ex = meta.task_execution_id.node_execution_id.execution_id
    ex.project, ex.domain = project, domain
    for k, v in (labels or {}).items():
        meta.labels[k] = v
    return meta


def owner(resource_meta: bytes):
    """The owner a Tern gateway recorded in its handle: "local" or the remote endpoint's URL."""
    handle = json.loads(resource_meta)
    assert handle["v"] == 1 and "owner" in handle, handle
    o = handle["owner"]
    return "local" if o == "local" else o["remote"]["endpoint"]


@pytest.fixture(scope="module")
def fleet(tern_bin, pyflyte_bin, logs_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("routing")
    eu = regional(tern_bin, logs_dir, tmp, "tern-eu")
    us = regional(tern_bin, logs_dir, tmp, "tern-us")
    flytekit = start_flytekit_server(pyflyte_bin, logs_dir, ["py_double", "noop_echo"], name="pyflyte-routing")
    config = write(tmp / "front.toml", front_config(eu.address, us.address, flytekit.address))
    front = start_tern_server(tern_bin, logs_dir, ["--config", str(config)], name="tern-front")
    yield {"eu": eu, "us": us, "flytekit": flytekit, "front": front, "config": config}
    for server in (front, flytekit, us, eu):
        server.process.stop()


def stubs(server):
    channel = server.channel()
    return channel, agent_pb2_grpc.AsyncAgentServiceStub(channel), agent_pb2_grpc.AgentMetadataServiceStub(channel)


def echo_template():
    return task_template("echo", inputs={"x": simple_type("INTEGER")}, outputs={"x": simple_type("INTEGER")})


def test_routes_by_project_domain_and_label(fleet):
    channel, stub, _ = stubs(fleet["front"])
    with channel:
        t = echo_template()
        by_project = stub.CreateTask(create_request(t, literal_map(x=lit_int(1)), metadata(t, "ml", "development")), timeout=10)
        assert owner(by_project.resource_meta) == f"http://{fleet['eu'].address}"
        other = stub.CreateTask(create_request(t, literal_map(x=lit_int(1)), metadata(t, "finance", "development")), timeout=10)
        assert owner(other.resource_meta) == "local"
        by_label = stub.CreateTask(
            create_request(t, literal_map(x=lit_int(1)), metadata(t, "finance", "development", {"runtime": "python"})),
            timeout=10,
        )
        assert owner(by_label.resource_meta) == f"http://{fleet['flytekit'].address}"
        s = task_template("sleep", inputs={"duration": simple_type("DURATION")}, outputs={})
        by_domain = stub.CreateTask(create_request(s, literal_map(duration=lit_duration(0)), metadata(s, "finance", "production")),
                                    timeout=10)
        assert owner(by_domain.resource_meta) == f"http://{fleet['eu'].address}"
        for handle, task_type in [(by_project, "echo"), (other, "echo"), (by_label, "echo"), (by_domain, "sleep")]:
            got = poll_until(lambda: stub.GetTask(get_request(task_type, handle.resource_meta), timeout=10),
                             lambda r: phase_name(r.resource.phase) not in ("RUNNING", "QUEUED", "INITIALIZING"), timeout=20)
            assert phase_name(got.resource.phase) == "SUCCEEDED", got


def test_a_flytekit_connector_behind_the_front_gateway(fleet):
    channel, stub, metadata_stub = stubs(fleet["front"])
    with channel:
        t = task_template("py_double", inputs={"x": simple_type("INTEGER")}, outputs={"y": simple_type("INTEGER")})
        created = stub.CreateTask(create_request(t, literal_map(x=lit_int(21)), metadata(t, "finance", "development")), timeout=10)
        got = poll_until(lambda: stub.GetTask(get_request("py_double", created.resource_meta), timeout=10),
                         lambda r: phase_name(r.resource.phase) == "SUCCEEDED", timeout=20)
        assert got.resource.outputs.literals["y"].scalar.primitive.integer == 42
        names = {a.name for a in metadata_stub.ListAgents(admin.ListAgentsRequest(), timeout=20).agents}
        assert "echo" in names, names
        assert "Py Double Connector (remote: group flytekit)" in names, names
        assert "sleep (remote: group compute)" in names, names


def test_tern_run_with_the_config_uses_the_same_routes(tern_bin, fleet, tmp_path):
    result = run_command([tern_bin, "run", WORKFLOWS_DIR / "with_connector.yaml", "--config", fleet["config"],
                          "--state-dir", tmp_path / "state", "--input", "x=21", "--json"], cwd=tmp_path, timeout=120)
    assert result.returncode == 0, explain(result)
    summary = json.loads(result.stdout)
    assert summary["phase"] == "SUCCEEDED", summary
    assert summary["outputs"]["y"] == 42, summary


def test_the_preferred_endpoint_killed_mid_run(tern_bin, logs_dir, tmp_path):
    eu = regional(tern_bin, logs_dir, tmp_path, "tern-eu-doomed")
    us = regional(tern_bin, logs_dir, tmp_path, "tern-us-survivor")
    config = write(tmp_path / "front.toml", front_config(eu.address, us.address, "127.0.0.1:1"))
    front = start_tern_server(tern_bin, logs_dir, ["--config", str(config)], name="tern-front-failover")
    try:
        channel, stub, _ = stubs(front)
        with channel:
            s = task_template("sleep", inputs={"duration": simple_type("DURATION")}, outputs={})
            running = stub.CreateTask(create_request(s, literal_map(duration=lit_duration(30)), metadata(s, "ml", "development", node="a")),
                                      timeout=10)
            assert owner(running.resource_meta) == f"http://{eu.address}"
            assert phase_name(stub.GetTask(get_request("sleep", running.resource_meta), timeout=10).resource.phase) == "RUNNING"

            eu.process.signal_group(signal.SIGKILL)
            eu.process.proc.wait(timeout=10)

            # New creates fail over to the other region...
            moved = stub.CreateTask(create_request(s, literal_map(duration=lit_duration(0)), metadata(s, "ml", "development", node="b")),
                                    timeout=10)
            assert owner(moved.resource_meta) == f"http://{us.address}"
            got = poll_until(lambda: stub.GetTask(get_request("sleep", moved.resource_meta), timeout=10),
                             lambda r: phase_name(r.resource.phase) == "SUCCEEDED", timeout=20)
            assert phase_name(got.resource.phase) == "SUCCEEDED"
            # ...while the job on the dead endpoint is only ever asked of its owner: a clear error naming it.
            with pytest.raises(grpc.RpcError) as failed:
                stub.GetTask(get_request("sleep", running.resource_meta), timeout=10)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert eu.address in failed.value.details() and "unreachable" in failed.value.details(), failed.value.details()
    finally:
        for server in (front, us, eu):
            server.process.stop()
