"""grpc.health.v1.Health, checked the way a Kubernetes gRPC probe or propeller would, on Tern and on flytekit."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tern_interop import AGENT_SERVICES


@pytest.mark.parametrize("service", ["", *AGENT_SERVICES])
def test_serving(agent_channel, service):
    stub = health_pb2_grpc.HealthStub(agent_channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_unknown_service_is_not_found(agent_channel):
    stub = health_pb2_grpc.HealthStub(agent_channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()


def test_watch_reports_serving(agent_channel):
    stub = health_pb2_grpc.HealthStub(agent_channel)
    stream = stub.Watch(health_pb2.HealthCheckRequest(service=AGENT_SERVICES[0]), timeout=10)
    try:
        first = next(stream)
    finally:
        stream.cancel()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
