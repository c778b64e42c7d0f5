"""gRPC server reflection on `tern serve`: what grpcurl / grpcui / Postman use to discover the API."""

from __future__ import annotations

import pytest
from flyteidl.admin import agent_pb2 as flyteidl_agent_pb2
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tern_interop import AGENT_SERVICES


@pytest.fixture(scope="module")
def reflected_pool(tern_channel):
    database = ProtoReflectionDescriptorDatabase(tern_channel)
    return database, descriptor_pool.DescriptorPool(database)


def test_lists_the_flyteidl_services(reflected_pool):
    database, _ = reflected_pool
    services = set(database.get_services())
    missing = set(AGENT_SERVICES) - services
    assert not missing, f"reflection does not list {sorted(missing)}; got {sorted(services)}"
    assert "grpc.health.v1.Health" in services


def test_resolves_create_task_request(reflected_pool):
    _, pool = reflected_pool
    message = pool.FindMessageTypeByName("flyteidl.admin.CreateTaskRequest")
    assert {f.name: f.number for f in message.fields} == {
        "inputs": 1, "template": 2, "output_prefix": 3, "task_execution_metadata": 4,
    }
    assert message.fields_by_name["template"].message_type.full_name == "flyteidl.core.TaskTemplate"


def test_resolves_service_methods(reflected_pool):
    _, pool = reflected_pool
    service = pool.FindServiceByName("flyteidl.service.AsyncAgentService")
    methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods}
    assert methods["CreateTask"] == ("flyteidl.admin.CreateTaskRequest", "flyteidl.admin.CreateTaskResponse")
    assert methods["GetTask"] == ("flyteidl.admin.GetTaskRequest", "flyteidl.admin.GetTaskResponse")
    assert methods["DeleteTask"] == ("flyteidl.admin.DeleteTaskRequest", "flyteidl.admin.DeleteTaskResponse")
    sync = pool.FindServiceByName("flyteidl.service.SyncAgentService").methods_by_name["ExecuteTaskSync"]
    assert sync.client_streaming and sync.server_streaming


def _field_signature(message_descriptor):
    return sorted(
        (f.name, f.number, f.type, f.label, f.message_type.full_name if f.message_type else None,
         f.enum_type.full_name if f.enum_type else None,
         f.containing_oneof.name if f.containing_oneof else None)
        for f in message_descriptor.fields
    )


@pytest.mark.parametrize("name", sorted(flyteidl_agent_pb2.DESCRIPTOR.message_types_by_name))
def test_reflected_admin_messages_match_flyteidl(reflected_pool, name):
    """Every flyteidl.admin agent message, as Tern reflects it, has flyteidl 1.16.8's exact fields."""
    _, pool = reflected_pool
    ours = pool.FindMessageTypeByName(f"flyteidl.admin.{name}")
    theirs = flyteidl_agent_pb2.DESCRIPTOR.message_types_by_name[name]
    assert _field_signature(ours) == _field_signature(theirs)


@pytest.mark.parametrize("path", [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
])
def test_both_reflection_versions_answer(tern_channel, path):
    # v1 and v1alpha messages are byte-identical, so the v1alpha classes serve for both paths.
    call = tern_channel.stream_stream(
        path,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    assert len(responses) == 1
    listed = {s.name for s in responses[0].list_services_response.service}
    assert set(AGENT_SERVICES) <= listed, listed
