"""`tern serve` as a platform team first meets it: what it serves by default, what it refuses, what it prints."""

from __future__ import annotations

import subprocess

from flyteidl.admin import agent_pb2 as admin
from flyteidl.service import agent_pb2_grpc

from tern_interop import ManagedProcess, child_env, free_port, run_command, start_tern_server, wait_until_serving


def list_agent_names(server) -> set:
    with server.channel() as channel:
        stub = agent_pb2_grpc.AgentMetadataServiceStub(channel)
        return {a.name for a in stub.ListAgents(admin.ListAgentsRequest(), timeout=10).agents}


def test_default_serve_does_not_expose_agents_that_run_code(tern_bin, logs_dir):
    server = start_tern_server(tern_bin, logs_dir, name="tern-serve-defaults")
    try:
        assert list_agent_names(server) == {"echo", "sleep", "webhook", "duckdb", "snowflake", "bigquery", "databricks", "batch", "ray", "lepton"}
        log = server.process.log_text()
        assert "not serving shell" in log and "not serving dask" in log and "enabled = true" in log, log
    finally:
        server.process.stop()


def test_listening_beyond_loopback_without_auth_warns(tern_bin, logs_dir):
    port = free_port()
    argv = [tern_bin, "serve", "--addr", f"0.0.0.0:{port}"]

    proc = ManagedProcess("tern-serve-wide", argv, logs_dir / f"tern-serve-wide-{port}.log")
    try:
        wait_until_serving(proc, f"127.0.0.1:{port}", timeout=30)
        log = proc.log_text()
        assert "warning: listening on 0.0.0.0" in log and "without authentication" in log, log
    finally:
        proc.stop()


def test_a_shell_section_without_enabled_refuses_to_start(tern_bin, tmp_path):
    config = tmp_path / "tern.toml"
    config.write_text("[agents.shell]\n")
    result = run_command([tern_bin, "serve", "--addr", f"127.0.0.1:{free_port()}", "--config", config], cwd=tmp_path,
                         timeout=30)
    assert result.returncode == 2, result.stderr
    assert "TERN-G009" in result.stderr and "enabled = true" in result.stderr, result.stderr


def test_config_show_prints_the_effective_configuration(tern_bin, tmp_path):
    config = tmp_path / "tern.toml"
    config.write_text('[agents.duckdb]\nmax_concurrency = 2\n[agents.webhook]\nallowed_hosts = ["hooks.example.com"]\n')
    env = child_env({"TERN_AGENTS__DUCKDB__THREADS": "3", "AWS_REGION": "eu-west-3",
                     "TERN_SECRET_API_TOKEN": "hunter2-secret-value"})
    result = subprocess.run([str(tern_bin), "config", "show", "--config", str(config)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "TERN_AGENTS__DUCKDB__THREADS" in out  # the header names where values came from
    assert "threads = 3" in out and "max_concurrency = 2" in out and "memory_limit" in out, out
    assert 's3_region = "eu-west-3"' in out, out
    assert "not served: shell" in out, out
    assert "hunter2" not in out, out

    bad = tmp_path / "bad.toml"
    bad.write_text("[agents.duckdb]\nthread = 2\n")
    result = subprocess.run([str(tern_bin), "config", "show", "--config", str(bad)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "TERN-G002" in result.stderr and "thread" in result.stderr, result.stderr


def test_json_logs_carry_the_task_execution_id_and_metrics_are_served(tern_bin, logs_dir):
    import json
    import urllib.request

    import grpc
    from tern_interop import create_request, lit_int, literal_map, propeller_metadata, simple_type, task_template

    metrics_port = free_port()
    server = start_tern_server(tern_bin, logs_dir, ["-vv", "--log-format", "json", "--metrics-addr", f"127.0.0.1:{metrics_port}"],
                               name="tern-serve-observed")
    try:
        template = task_template("no_such_type", inputs={"x": simple_type("INTEGER")}, outputs={})
        meta = propeller_metadata(template, execution_name="obsexec1", node_id="n7")
        with server.channel() as channel:
            stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
            try:
                stub.CreateTask(create_request(template, literal_map(x=lit_int(1)), meta), timeout=10)
                raise AssertionError("an unknown task type must be refused")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND
        served = None
        for line in server.process.log_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("message") == "served":
                served = event
        assert served is not None, server.process.log_text()
        span = served.get("span", {})
        assert span.get("rpc") == "CreateTask" and span.get("task_type") == "no_such_type", served
        assert span.get("task_execution_id") == "flytesnacks/development/obsexec1/n7/0", served

        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        assert 'flyte_connector_requests_failure_total{task_type="no_such_type",operation="create",error_code="404"} 1' in text, text
        assert 'tern_requests_total{rpc="CreateTask",task_type="no_such_type",status="NOT_FOUND"} 1' in text, text
    finally:
        server.process.stop()
