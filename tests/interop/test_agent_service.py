"""Tern's gateway as FlytePropeller sees it: flyteidl's own generated stubs against `tern serve`."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from flyteidl.admin import agent_pb2 as admin
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc

from tern_interop import (
    create_request,
    delete_request,
    get_request,
    lit_duration,
    lit_float,
    lit_int,
    lit_str,
    literal_map,
    output_prefix,
    phase_name,
    poll_until,
    propeller_metadata,
    python_inputs_to_literal_map,
    simple_type,
    task_template,
)

DEFAULT_AGENTS = {
    # name: (task type, is_sync)
    "echo": ("echo", False),
    "sleep": ("sleep", False),
    "webhook": ("webhook", True),
    "duckdb": ("duckdb", False),
    "shell": ("shell", False),
    "snowflake": ("snowflake", False),
    "bigquery": ("bigquery_query_job_task", False),
    "databricks": ("databricks", False),
    "batch": ("aws-batch", False),
    "ray": ("ray", False),
    "dask": ("dask", False),
    "lepton": ("lepton_endpoint_deployment_task", False),
    "gpu": ("gpu", False),
}


@pytest.fixture(scope="module")
def async_stub(tern_channel):
    return agent_pb2_grpc.AsyncAgentServiceStub(tern_channel)


@pytest.fixture(scope="module")
def sync_stub(tern_channel):
    return agent_pb2_grpc.SyncAgentServiceStub(tern_channel)


@pytest.fixture(scope="module")
def metadata_stub(tern_channel):
    return agent_pb2_grpc.AgentMetadataServiceStub(tern_channel)


def echo_template():
    return task_template(
        "echo",
        inputs={"i": simple_type("INTEGER"), "s": simple_type("STRING"), "f": simple_type("FLOAT")},
        outputs={"i": simple_type("INTEGER"), "s": simple_type("STRING"), "f": simple_type("FLOAT")},
    )


def sleep_template():
    return task_template("sleep", inputs={"duration": simple_type("DURATION")}, outputs={})


# ----------------------------------------------------------------------------------------------------------------
# AgentMetadataService
# ----------------------------------------------------------------------------------------------------------------


def test_list_agents_has_every_default_agent(metadata_stub):
    response = metadata_stub.ListAgents(admin.ListAgentsRequest(), timeout=10)
    by_name = {a.name: a for a in response.agents}
    missing = set(DEFAULT_AGENTS) - set(by_name)
    assert not missing, f"ListAgents lacks {sorted(missing)}; got {sorted(by_name)}"
    for name, (task_type, is_sync) in DEFAULT_AGENTS.items():
        agent = by_name[name]
        categories = [(c.name, c.version) for c in agent.supported_task_categories]
        assert (task_type, 0) in categories, f"{name}: supported_task_categories={categories}"
        # deprecated field, still filled by flytekit and read by older propellers
        assert task_type in agent.supported_task_types, f"{name}: supported_task_types={list(agent.supported_task_types)}"
        assert agent.is_sync is is_sync, f"{name}: is_sync={agent.is_sync}"


def test_get_agent_echo(metadata_stub):
    agent = metadata_stub.GetAgent(admin.GetAgentRequest(name="echo"), timeout=10).agent
    assert agent.name == "echo"
    assert not agent.is_sync
    assert [(c.name, c.version) for c in agent.supported_task_categories] == [("echo", 0)]
    assert list(agent.supported_task_types) == ["echo"]


def test_get_agent_unknown_is_not_found(metadata_stub):
    with pytest.raises(grpc.RpcError) as info:
        metadata_stub.GetAgent(admin.GetAgentRequest(name="no-such-agent"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()


# ----------------------------------------------------------------------------------------------------------------
# echo
# ----------------------------------------------------------------------------------------------------------------


def test_echo_create_get_delete_returns_inputs(async_stub):
    template = echo_template()
    inputs = literal_map(i=lit_int(42), s=lit_str("héllo, tern"), f=lit_float(2.5))
    meta = propeller_metadata(template)
    created = async_stub.CreateTask(create_request(template, inputs, meta), timeout=10)

    assert created.resource_meta, "CreateTask returned empty resource_meta"
    handle = json.loads(created.resource_meta.decode("utf-8"))
    assert isinstance(handle, dict) and handle.get("v") == 1, f"resource_meta is not versioned JSON: {handle!r}"

    got = async_stub.GetTask(get_request("echo", created.resource_meta, output_prefix(meta)), timeout=10)
    assert phase_name(got.resource.phase) == "SUCCEEDED", got.resource
    assert got.resource.outputs == inputs

    async_stub.DeleteTask(delete_request("echo", created.resource_meta), timeout=10)


def test_echo_accepts_flytekit_encoded_literals(async_stub):
    """Inputs encoded by flytekit's TypeEngine (as a flytekit-authored upstream task would produce them)."""
    template = echo_template()
    inputs = python_inputs_to_literal_map({"i": -7, "s": "from flytekit", "f": 1e-3},
                                          {"i": int, "s": str, "f": float})
    created = async_stub.CreateTask(create_request(template, inputs), timeout=10)
    got = async_stub.GetTask(get_request("echo", created.resource_meta), timeout=10)
    assert phase_name(got.resource.phase) == "SUCCEEDED", got.resource
    assert got.resource.outputs == inputs


def test_get_task_without_task_category_uses_deprecated_task_type(async_stub):
    """Older propellers only send the deprecated task_type; flytekit routes on it when task_category is empty."""
    template = echo_template()
    inputs = literal_map(i=lit_int(1), s=lit_str("x"), f=lit_float(0.5))
    created = async_stub.CreateTask(create_request(template, inputs), timeout=10)
    got = async_stub.GetTask(admin.GetTaskRequest(task_type="echo", resource_meta=created.resource_meta), timeout=10)
    assert phase_name(got.resource.phase) == "SUCCEEDED", got.resource
    assert got.resource.outputs == inputs


# ----------------------------------------------------------------------------------------------------------------
# sleep
# ----------------------------------------------------------------------------------------------------------------


def _sleep(async_stub, duration_literal, meta=None):
    template = sleep_template()
    started = time.monotonic()
    created = async_stub.CreateTask(create_request(template, literal_map(duration=duration_literal), meta),
                                    timeout=10)
    return created.resource_meta, started


@pytest.mark.parametrize("duration", [lit_duration(1), lit_int(1), lit_float(1.0)], ids=["duration", "int", "float"])
def test_sleep_runs_then_succeeds(async_stub, duration):
    resource_meta, started = _sleep(async_stub, duration)
    first = async_stub.GetTask(get_request("sleep", resource_meta), timeout=10).resource
    assert phase_name(first.phase) == "RUNNING", first

    last = poll_until(lambda: async_stub.GetTask(get_request("sleep", resource_meta), timeout=10).resource,
                      lambda r: r.phase != TaskExecution.RUNNING, timeout=15)
    elapsed = time.monotonic() - started
    assert phase_name(last.phase) == "SUCCEEDED", last
    assert elapsed >= 0.9, f"sleep(1s) succeeded after only {elapsed:.2f}s"
    assert elapsed < 10, f"sleep(1s) took {elapsed:.2f}s"
    assert len(last.outputs.literals) == 0, last.outputs


def test_sleep_delete_then_aborted(async_stub):
    resource_meta, _ = _sleep(async_stub, lit_duration(120))
    assert phase_name(async_stub.GetTask(get_request("sleep", resource_meta), timeout=10).resource.phase) == "RUNNING"
    async_stub.DeleteTask(delete_request("sleep", resource_meta), timeout=10)
    after = async_stub.GetTask(get_request("sleep", resource_meta), timeout=10).resource
    assert phase_name(after.phase) == "ABORTED", after


def test_create_is_idempotent_per_task_execution_id(async_stub):
    """Propeller may call CreateTask again for the same attempt (crash or timeout after submit): same job."""
    template = sleep_template()
    meta = propeller_metadata(template, node_id="n-idem", retry_attempt=0)
    inputs = literal_map(duration=lit_duration(30))
    first = async_stub.CreateTask(create_request(template, inputs, meta), timeout=10).resource_meta
    time.sleep(0.05)
    second = async_stub.CreateTask(create_request(template, inputs, meta), timeout=10).resource_meta
    assert first == second, f"two CreateTask calls for one task_execution_id gave {first!r} and {second!r}"
    async_stub.DeleteTask(delete_request("sleep", first), timeout=10)


def test_a_new_retry_attempt_is_a_new_job(async_stub):
    template = sleep_template()
    name = "aretry" + str(time.time_ns())[-12:]
    inputs = literal_map(duration=lit_duration(30))
    attempt0 = propeller_metadata(template, execution_name=name, node_id="n-retry", retry_attempt=0)
    attempt1 = propeller_metadata(template, execution_name=name, node_id="n-retry", retry_attempt=1)
    first = async_stub.CreateTask(create_request(template, inputs, attempt0), timeout=10).resource_meta
    second = async_stub.CreateTask(create_request(template, inputs, attempt1), timeout=10).resource_meta
    assert first != second, "retry attempts 0 and 1 were given the same job"
    for rm in (first, second):
        async_stub.DeleteTask(delete_request("sleep", rm), timeout=10)


# ----------------------------------------------------------------------------------------------------------------
# error mapping
# ----------------------------------------------------------------------------------------------------------------


def test_create_unknown_task_type_is_not_found(async_stub):
    template = task_template("no_such_task_type", inputs={}, outputs={})
    with pytest.raises(grpc.RpcError) as info:
        async_stub.CreateTask(create_request(template, literal_map()), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()


def test_get_unknown_task_category_is_not_found(async_stub):
    with pytest.raises(grpc.RpcError) as info:
        async_stub.GetTask(get_request("no_such_task_type", b'{"v":1}'), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()


def test_create_without_template_is_invalid_argument(async_stub):
    request = admin.CreateTaskRequest(inputs=literal_map(i=lit_int(1)), output_prefix="s3://bucket/prefix")
    with pytest.raises(grpc.RpcError) as info:
        async_stub.CreateTask(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()


@pytest.mark.parametrize("garbage", [b"\x00\x01not json", b"{\"v\": 1", b"[]"], ids=["binary", "truncated", "array"])
def test_get_with_garbage_resource_meta_is_invalid_argument(async_stub, garbage):
    with pytest.raises(grpc.RpcError) as info:
        async_stub.GetTask(get_request("echo", garbage), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()


@pytest.mark.parametrize("method", [
    "/flyteidl.service.AsyncAgentService/CreateTask",
    "/flyteidl.service.AsyncAgentService/GetTask",
    "/flyteidl.service.AsyncAgentService/DeleteTask",
    "/flyteidl.service.AgentMetadataService/GetAgent",
])
def test_undecodable_protobuf_is_invalid_argument(tern_channel, method):
    call = tern_channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        call(b"\xff\xff\xff", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{info.value.code()}: {info.value.details()}"


def test_server_survives_bad_requests(async_stub, tern_server):
    """After all the error cases above the same server still answers a good request."""
    template = echo_template()
    inputs = literal_map(i=lit_int(5), s=lit_str("still here"), f=lit_float(5.5))
    created = async_stub.CreateTask(create_request(template, inputs), timeout=10)
    got = async_stub.GetTask(get_request("echo", created.resource_meta), timeout=10)
    assert got.resource.outputs == inputs
    assert tern_server.process.alive()
