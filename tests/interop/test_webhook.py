"""ExecuteTaskSync on the `webhook` agent, with TaskTemplates serialized by flytekit's real WebhookTask.

Every test runs twice: against Tern and against flytekit's own connector server (`pyflyte serve connector`,
whose built-in WebhookConnector is the reference behaviour). Both must give the same answers.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Optional

import pytest
from flyteidl.admin import agent_pb2 as admin
from flyteidl.core import literals_pb2
from flyteidl.service import agent_pb2_grpc

from tern_interop import (
    literal_to_python,
    output_prefix,
    phase_name,
    propeller_metadata,
    python_inputs_to_literal_map,
)


def serialize_task(task):
    """The core.TaskTemplate protobuf exactly as `pyflyte register` / `pyflyte package` would produce it."""
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    settings = SerializationSettings(
        image_config=ImageConfig.auto_default_image(), project="flytesnacks", domain="development", version="v1",
    )
    return get_serializable(OrderedDict(), settings, task).template.to_flyte_idl()


def execute_sync(channel, template, inputs: Optional[literals_pb2.LiteralMap]) -> admin.Resource:
    """Propeller's ExecuteTaskSync exchange: header message, then inputs message; first response carries the header."""
    meta = propeller_metadata(template)
    header = admin.CreateRequestHeader(template=template, output_prefix=output_prefix(meta),
                                       task_execution_metadata=meta)
    requests = iter([
        admin.ExecuteTaskSyncRequest(header=header),
        admin.ExecuteTaskSyncRequest(inputs=inputs if inputs is not None else literals_pb2.LiteralMap()),
    ])
    responses = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(requests, timeout=30))
    assert responses, "ExecuteTaskSync returned no message"
    assert responses[0].WhichOneof("res") == "header", responses[0]
    return responses[0].header.resource


def info_output(resource: admin.Resource) -> Dict:
    assert set(resource.outputs.literals) == {"info"}, resource.outputs
    return literal_to_python(resource.outputs.literals["info"], dict)


def test_get_with_query_params_and_headers(agent_channel, http_sink):
    from flytekit.extras.webhook import WebhookTask

    task = WebhookTask(
        name="interop-get",
        url=http_sink.url + "/items/{inputs.item_id}",
        method="GET",
        headers={"X-Tern-Test": "hello {inputs.s}", "Accept": "application/json"},
        data={"q": "{inputs.s}", "id": "{inputs.item_id}", "ratio": "r={inputs.ratio}"},
        dynamic_inputs={"s": str, "item_id": int, "ratio": float},
    )
    template = serialize_task(task)
    assert template.type == "webhook"
    inputs = python_inputs_to_literal_map({"s": "world", "item_id": 10, "ratio": 1.5},
                                          {"s": str, "item_id": int, "ratio": float})

    resource = execute_sync(agent_channel, template, inputs)

    received = http_sink.only_request(resource)
    assert received.method == "GET"
    assert received.path == "/items/10"
    assert received.query == {"q": ["world"], "id": ["10"], "ratio": ["r=1.5"]}
    assert received.headers.get("x-tern-test") == "hello world"
    assert received.headers.get("accept") == "application/json"
    assert received.body == b""

    assert phase_name(resource.phase) == "SUCCEEDED", resource
    assert resource.message == "Webhook was successfully invoked!"
    assert info_output(resource) == {"status_code": 200, "response_data": http_sink.ok_body}


def test_post_json_body_with_show_data_and_show_url(agent_channel, http_sink):
    from flytekit.extras.webhook import WebhookTask

    url = http_sink.url + "/hooks/{inputs.channel}"
    task = WebhookTask(
        name="interop-post",
        url=url,
        method="POST",
        headers={"Content-Type": "application/json", "X-Count": "n={inputs.n}"},
        data={
            "text": "deploy of {inputs.channel} finished",
            "count": "{inputs.n}",              # a lone placeholder keeps the input's type
            "nested": {"items": ["{inputs.channel}", "static"], "flag": True},
        },
        dynamic_inputs={"channel": str, "n": int},
        show_data=True,
        show_url=True,
        timeout=7,
    )
    template = serialize_task(task)
    inputs = python_inputs_to_literal_map({"channel": "ops", "n": 3}, {"channel": str, "n": int})

    resource = execute_sync(agent_channel, template, inputs)

    expected_data = {
        "text": "deploy of ops finished",
        "count": 3,
        "nested": {"items": ["ops", "static"], "flag": True},
    }
    received = http_sink.only_request(resource)
    assert received.method == "POST"
    assert received.path == "/hooks/ops"
    assert received.query == {}
    assert received.headers.get("x-count") == "n=3"
    assert "application/json" in received.headers.get("content-type", "")
    assert received.json() == expected_data

    assert phase_name(resource.phase) == "SUCCEEDED", resource
    assert resource.message == "Webhook was successfully invoked!"
    assert info_output(resource) == {
        "status_code": 200,
        "response_data": http_sink.ok_body,
        "input_data": expected_data,
        "url": http_sink.url + "/hooks/ops",
    }


def test_no_dynamic_inputs(agent_channel, http_sink):
    from flytekit.extras.webhook import WebhookTask

    task = WebhookTask(name="interop-static", url=http_sink.url + "/static", method="POST", data={"a": "b"})
    resource = execute_sync(agent_channel, serialize_task(task), literals_pb2.LiteralMap())
    assert http_sink.only_request(resource).json() == {"a": "b"}
    assert phase_name(resource.phase) == "SUCCEEDED", resource
    assert info_output(resource) == {"status_code": 200, "response_data": http_sink.ok_body}


def test_server_error_fails_the_task(agent_channel, http_sink):
    from flytekit.extras.webhook import WebhookTask

    task = WebhookTask(name="interop-500", url=http_sink.url + "/fail/{inputs.s}", method="POST",
                       data={"s": "{inputs.s}"}, dynamic_inputs={"s": str})
    inputs = python_inputs_to_literal_map({"s": "x"}, {"s": str})

    resource = execute_sync(agent_channel, serialize_task(task), inputs)

    assert http_sink.only_request(resource).path == "/fail/x"
    assert phase_name(resource.phase) == "FAILED", resource
    assert resource.message == f"Webhook failed with status code 500, response: {http_sink.fail_body}"
    assert len(resource.outputs.literals) == 0


def test_unreachable_endpoint_fails_the_task(agent_channel):
    """Connection refused is reported in-band as FAILED (flytekit: message = the exception text)."""
    from flytekit.extras.webhook import WebhookTask

    from tern_interop import free_port

    task = WebhookTask(name="interop-refused", url=f"http://127.0.0.1:{free_port()}/nobody", method="GET",
                       timeout=3)
    resource = execute_sync(agent_channel, serialize_task(task), literals_pb2.LiteralMap())
    assert phase_name(resource.phase) == "FAILED", resource
    assert resource.message, "a failed webhook must say why"


@pytest.mark.parametrize("missing", ["{inputs.nope}"])
def test_unknown_placeholder_fails_the_task(agent_channel, http_sink, missing):
    from flytekit.extras.webhook import WebhookTask

    task = WebhookTask(name="interop-bad-placeholder", url=http_sink.url + "/x", method="POST",
                       data={"v": missing})
    resource = execute_sync(agent_channel, serialize_task(task), literals_pb2.LiteralMap())
    assert phase_name(resource.phase) == "FAILED", resource
    assert http_sink.requests == [], "no request may be sent when the template cannot be rendered"
