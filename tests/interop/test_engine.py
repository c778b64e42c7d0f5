"""`tern run` / `tern validate`: the engine with in-process agents, through a gateway, and calling a real
third-party flytekit connector served by `pyflyte serve connector`."""

from __future__ import annotations

import json

import pytest

from tern_interop import WORKFLOWS_DIR, explain, run_command

WITH_CONNECTOR = WORKFLOWS_DIR / "with_connector.yaml"
IN_PROCESS = WORKFLOWS_DIR / "in_process.yaml"


def tern_run(tern_bin, tmp_path, workflow, *args, timeout=120):
    state_dir = tmp_path / "state"
    return run_command([tern_bin, "run", workflow, "--state-dir", state_dir, *args], cwd=tmp_path, timeout=timeout)


def run_json(tern_bin, tmp_path, workflow, *args):
    result = tern_run(tern_bin, tmp_path, workflow, "--json", *args)
    assert result.returncode == 0, explain(result)
    try:
        summary = json.loads(result.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"--json did not print one JSON object ({e})\n{explain(result)}")
    assert isinstance(summary, dict), explain(result)
    assert isinstance(summary.get("execution_id"), str) and summary["execution_id"], summary
    assert summary.get("phase") == "SUCCEEDED", summary
    return summary


# ----------------------------------------------------------------------------------------------------------------
# validate
# ----------------------------------------------------------------------------------------------------------------


def test_validate_accepts(tern_bin, tmp_path):
    result = run_command([tern_bin, "validate", WORKFLOWS_DIR / "in_process.yaml"], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, explain(result)


def test_validate_checks_task_types_against_the_routed_connector(tern_bin, flytekit_server, tmp_path):
    """py_double is served only by the flytekit connector: valid with the route, rejected without it."""
    routed = run_command([tern_bin, "validate", WORKFLOWS_DIR / "with_connector.yaml",
                          "--connector", f"py_double={flytekit_server.address}"], cwd=tmp_path, timeout=60)
    assert routed.returncode == 0, explain(routed)
    unrouted = run_command([tern_bin, "validate", WORKFLOWS_DIR / "with_connector.yaml"], cwd=tmp_path, timeout=60)
    assert unrouted.returncode == 2, explain(unrouted)
    assert "TERN-E211" in unrouted.stderr and "py_double" in unrouted.stderr and "doubled" in unrouted.stderr, \
        explain(unrouted)


def test_validate_rejects_type_mismatch(tern_bin, tmp_path):
    result = run_command([tern_bin, "validate", WORKFLOWS_DIR / "invalid_type_mismatch.yaml"], cwd=tmp_path,
                         timeout=60)
    assert result.returncode == 2, explain(result)
    message = (result.stderr + result.stdout).lower()
    for word in ("second", "n", "integer", "string"):
        assert word in message, f"validation message does not name {word!r}\n{explain(result)}"


def test_validate_rejects_cycle(tern_bin, tmp_path):
    result = run_command([tern_bin, "validate", WORKFLOWS_DIR / "invalid_cycle.yaml"], cwd=tmp_path, timeout=60)
    assert result.returncode == 2, explain(result)


# ----------------------------------------------------------------------------------------------------------------
# run: in-process agents, and the same workflow through a remote Tern gateway
# ----------------------------------------------------------------------------------------------------------------


def test_run_in_process(tern_bin, tmp_path):
    summary = run_json(tern_bin, tmp_path, IN_PROCESS, "--input", "x=7", "--input", "greeting=hi there")
    assert summary["outputs"] == {"n": 7, "greeting": "hi there"}


def test_run_uses_input_defaults(tern_bin, tmp_path):
    summary = run_json(tern_bin, tmp_path, IN_PROCESS, "--input", "greeting=defaults")
    assert summary["outputs"] == {"n": 3, "greeting": "defaults"}


def test_run_through_gateway(tern_bin, tern_server, tmp_path):
    summary = run_json(tern_bin, tmp_path, IN_PROCESS, "--input", "x=11", "--input", "greeting=via gateway",
                       "--gateway", tern_server.address)
    assert summary["outputs"] == {"n": 11, "greeting": "via gateway"}


def test_run_rejects_bad_input_value(tern_bin, tmp_path):
    result = tern_run(tern_bin, tmp_path, IN_PROCESS, "--input", "x=not-a-number", "--input", "greeting=g")
    assert result.returncode == 2, explain(result)


def test_run_rejects_missing_required_input(tern_bin, tmp_path):
    result = tern_run(tern_bin, tmp_path, IN_PROCESS, "--input", "x=1")
    assert result.returncode == 2, explain(result)
    assert "greeting" in result.stderr, explain(result)


# ----------------------------------------------------------------------------------------------------------------
# run: a node delegated to a real flytekit connector server
# ----------------------------------------------------------------------------------------------------------------


def test_run_with_flytekit_connector(tern_bin, flytekit_server, tmp_path):
    summary = run_json(tern_bin, tmp_path, WITH_CONNECTOR, "--input", "x=21",
                       "--connector", f"py_double={flytekit_server.address}")
    assert summary["outputs"] == {"y": 42}


def test_failing_connector_fails_the_execution(tern_bin, flytekit_server, tmp_path):
    result = tern_run(tern_bin, tmp_path, WITH_CONNECTOR, "--input", "x=-4",
                      "--connector", f"py_double={flytekit_server.address}")
    assert result.returncode == 1, explain(result)
    assert "doubled" in result.stderr, f"stderr does not name the failing node\n{explain(result)}"
    assert "refuses negative input" in result.stderr, f"stderr does not carry the connector's message\n{explain(result)}"


def test_connector_route_can_also_point_at_a_tern_gateway(tern_bin, tern_server, tmp_path):
    """--connector works for any agent server: route `echo` to a Tern gateway (and `sleep` stays in-process)."""
    summary = run_json(tern_bin, tmp_path, IN_PROCESS, "--input", "x=5", "--input", "greeting=routed",
                       "--connector", f"echo={tern_server.address}")
    assert summary["outputs"] == {"n": 5, "greeting": "routed"}


def test_py_double_connector_itself(flytekit_channel):
    """The peer used above, called directly with flyteidl stubs: proves a failure above is Tern's, not the peer's."""
    from flyteidl.service import agent_pb2_grpc

    from tern_interop import (
        create_request,
        get_request,
        lit_int,
        literal_map,
        literal_to_python,
        phase_name,
        simple_type,
        task_template,
    )

    stub = agent_pb2_grpc.AsyncAgentServiceStub(flytekit_channel)
    template = task_template("py_double", inputs={"x": simple_type("INTEGER")}, outputs={"y": simple_type("INTEGER")})

    created = stub.CreateTask(create_request(template, literal_map(x=lit_int(21))), timeout=10)
    resource = stub.GetTask(get_request("py_double", created.resource_meta), timeout=10).resource
    assert phase_name(resource.phase) == "SUCCEEDED", resource
    assert literal_to_python(resource.outputs.literals["y"], int) == 42

    created = stub.CreateTask(create_request(template, literal_map(x=lit_int(-4))), timeout=10)
    resource = stub.GetTask(get_request("py_double", created.resource_meta), timeout=10).resource
    assert phase_name(resource.phase) == "FAILED", resource
    assert "refuses negative input" in resource.message
