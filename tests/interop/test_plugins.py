"""Agent plugins end to end: `tern serve` loads the example plugin (examples/plugin-agent) from `[plugins] dir` and
serves its agents over gRPC to flyteidl's own stubs; `tern run` runs workflow nodes on it, in-process and through
the serving gateway; a broken library stops `tern serve` naming the file, unless `on_error = "skip"`.

Peer: the example plugin's library. scripts/test.sh builds it and exports TERN_PLUGIN_EXAMPLE; without that, this
module builds it with cargo (a missing cargo is a missing peer)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import agent_pb2 as admin
from flyteidl.service import agent_pb2_grpc
from grpc_health.v1 import health_pb2

from tern_interop import (
    REPO,
    WORKFLOWS_DIR,
    ManagedProcess,
    Server,
    child_env,
    explain,
    free_port,
    health_status,
    lit_str,
    literal_map,
    missing_peer,
    phase_name,
    poll_until,
    propeller_metadata,
    run_command,
    simple_type,
    start_tern_server,
    task_template,
    wait_until_serving,
)

PLUGIN_WORKFLOW = WORKFLOWS_DIR / "plugin.yaml"
LIBRARY = "libtern_plugin_example.so"


@pytest.fixture(scope="session")
def example_plugin() -> Path:
    raw = os.environ.get("TERN_PLUGIN_EXAMPLE")
    if raw and Path(raw).is_file():
        return Path(raw).resolve()
    cargo = shutil.which("cargo")
    if cargo is None:
        missing_peer("the example plugin (TERN_PLUGIN_EXAMPLE is unset and cargo is not on PATH to build it)")
    manifest = REPO / "examples" / "plugin-agent" / "Cargo.toml"
    meta = subprocess.run([cargo, "metadata", "--format-version", "1", "--no-deps", "--manifest-path", str(manifest)],
                          capture_output=True, text=True, check=True)
    target = Path(json.loads(meta.stdout)["target_directory"])
    built = subprocess.run([cargo, "build", "--manifest-path", str(manifest)], capture_output=True, text=True)
    assert built.returncode == 0, f"building the example plugin failed:\n{built.stderr}"
    library = target / "debug" / LIBRARY
    assert library.is_file(), f"cargo built the example plugin but {library} is missing"
    return library


@pytest.fixture
def plugins_dir(example_plugin, tmp_path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / LIBRARY).symlink_to(example_plugin)
    return directory


def write_config(path: Path, plugins: Path, data_root: Path, extra: str = "") -> Path:
    path.write_text(f"""
[plugins]
dir = "{plugins}"
{extra}
[data_store]
root = "{data_root}"
allowed_roots = ["{path.parent}"]

[agents.greeter]
greeting = "Hi"

[agents.wordcount]

[agents.echo]
""")
    return path


@pytest.fixture
def plugin_server(tern_bin, logs_dir, plugins_dir, tmp_path):
    """`tern serve` with the plugin, logging at info (TERN_LOG) so the plugin's own events show."""
    config = write_config(tmp_path / "tern.toml", plugins_dir, tmp_path / "gateway-data")
    address = f"127.0.0.1:{free_port()}"
    proc = ManagedProcess("tern-serve-plugins", [tern_bin, "serve", "--addr", address, "--config", config],
                          logs_dir / f"tern-serve-plugins-{address.rsplit(':', 1)[1]}.log",
                          env=child_env({"TERN_LOG": "info"}))
    try:
        wait_until_serving(proc, address, timeout=30)
    except Exception:
        proc.stop()
        raise
    yield Server("tern", address, proc)
    proc.stop()


def greet_template():
    return task_template("greet", inputs={"name": simple_type("STRING")}, outputs={"greeting": simple_type("STRING")})


def wordcount_template():
    return task_template("wordcount", inputs={"text": simple_type("STRING")}, outputs={"words": simple_type("INTEGER")})


def greet(channel, name: str, prefix: str = "runs/greet"):
    stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
    template = greet_template()
    request = admin.CreateTaskRequest(inputs=literal_map(name=lit_str(name)), template=template, output_prefix=prefix,
                                      task_execution_metadata=propeller_metadata(template))
    created = stub.CreateTask(request, timeout=10)
    get = admin.GetTaskRequest(task_type="greet", task_category=admin.TaskCategory(name="greet", version=0),
                               resource_meta=created.resource_meta, output_prefix=prefix)
    return poll_until(lambda: stub.GetTask(get, timeout=10).resource,
                      lambda r: phase_name(r.phase) not in ("RUNNING", "QUEUED", "INITIALIZING"), timeout=15)


def count_words(channel, text: str):
    template = wordcount_template()
    header = admin.CreateRequestHeader(template=template, output_prefix="runs/count",
                                       task_execution_metadata=propeller_metadata(template))
    requests = iter([admin.ExecuteTaskSyncRequest(header=header),
                     admin.ExecuteTaskSyncRequest(inputs=literal_map(text=lit_str(text)))])
    responses = list(agent_pb2_grpc.SyncAgentServiceStub(channel).ExecuteTaskSync(requests, timeout=10))
    assert responses and responses[0].WhichOneof("res") == "header", responses
    return responses[0].header.resource


def test_serve_lists_the_plugins_agents_beside_built_in_ones(plugin_server):
    with plugin_server.channel() as channel:
        agents = agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(admin.ListAgentsRequest(), timeout=10).agents
    found = {a.name: (a.is_sync, [(c.name, c.version) for c in a.supported_task_categories]) for a in agents}
    assert found == {"greeter": (False, [("greet", 0)]), "wordcount": (True, [("wordcount", 0)]),
                     "echo": (False, [("echo", 0)])}, found
    log = plugin_server.process.log_text()
    assert "greeter" in log and LIBRARY in log, f"the start-up table does not show the plugin's source\n{log}"


def test_plugin_tasks_run_over_grpc(plugin_server):
    with plugin_server.channel() as channel:
        resource = greet(channel, "Ada")
        assert phase_name(resource.phase) == "SUCCEEDED", resource
        assert resource.outputs == literal_map(greeting=lit_str("Hi, Ada!"))

        log = plugin_server.process.log_text()
        assert "greeting Ada" in log and "tern_plugin_example" in log, \
            f"the plugin's log event is not in the gateway's log\n{log}"

        resource = count_words(channel, "one two three four")
        assert phase_name(resource.phase) == "SUCCEEDED", resource
        assert resource.outputs.literals["words"].scalar.primitive.integer == 4


def test_a_panicking_plugin_call_is_an_error_and_the_gateway_keeps_serving(plugin_server):
    with plugin_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as raised:
            greet(channel, "panic")
        assert raised.value.code() == grpc.StatusCode.INTERNAL, raised.value
        assert "plugin greeter panicked during create" in raised.value.details(), raised.value.details()
        with pytest.raises(grpc.RpcError) as raised:
            count_words(channel, "panic")
        assert "plugin wordcount panicked during execute" in raised.value.details(), raised.value.details()

        assert plugin_server.process.alive(), plugin_server.process.describe()
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        assert phase_name(greet(channel, "again").phase) == "SUCCEEDED"


def run_workflow(tern_bin, tmp_path, *args):
    result = run_command([tern_bin, "run", PLUGIN_WORKFLOW, "--state-dir", tmp_path / "state", "--json",
                          "--input", "name=Ada", *args], cwd=tmp_path, timeout=120)
    assert result.returncode == 0, explain(result)
    summary = json.loads(result.stdout)
    assert summary.get("phase") == "SUCCEEDED", summary
    return summary


def test_tern_run_runs_nodes_on_the_plugin_in_process(tern_bin, plugins_dir, tmp_path):
    config = write_config(tmp_path / "tern.toml", plugins_dir, tmp_path / "data")
    summary = run_workflow(tern_bin, tmp_path, "--config", config)
    assert summary["outputs"] == {"greeting": "Hi, Ada!", "words": 2}, summary


def test_tern_run_runs_nodes_on_the_plugin_through_the_gateway(tern_bin, plugin_server, tmp_path):
    summary = run_workflow(tern_bin, tmp_path, "--gateway", plugin_server.address)
    assert summary["outputs"] == {"greeting": "Hi, Ada!", "words": 2}, summary


def test_a_broken_library_stops_tern_serve_naming_the_file(tern_bin, plugins_dir, tmp_path, logs_dir):
    broken = plugins_dir / "libbroken.so"
    broken.write_bytes(b"this is not a shared library")
    config = write_config(tmp_path / "tern.toml", plugins_dir, tmp_path / "data")
    result = run_command([tern_bin, "serve", "--addr", f"127.0.0.1:{free_port()}", "--config", config],
                         cwd=tmp_path, timeout=60)
    assert result.returncode == 2, explain(result)
    assert "TERN-G021" in result.stderr and str(broken) in result.stderr, explain(result)

    config = write_config(tmp_path / "tern.toml", plugins_dir, tmp_path / "data", extra='on_error = "skip"')
    server = start_tern_server(tern_bin, logs_dir, ["--config", str(config)], name="tern-serve-plugins-skip")
    try:
        log = server.process.log_text()
        assert f"not serving {broken}" in log and "TERN-G021" in log, log
        with server.channel() as channel:
            assert phase_name(greet(channel, "Bo").phase) == "SUCCEEDED"
    finally:
        server.process.stop()


def test_config_show_prints_the_plugins_effective_settings(tern_bin, plugins_dir, tmp_path):
    config = write_config(tmp_path / "tern.toml", plugins_dir, tmp_path / "data")
    result = run_command([tern_bin, "config", "show", "--config", config, "--json"], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, explain(result)
    shown = json.loads(result.stdout)
    assert shown["agents"]["greeter"]["greeting"] == "Hi" and shown["agents"]["greeter"]["shout"] is False, shown
    assert shown["agents"]["wordcount"]["min_length"] == 0, shown
    assert shown["plugins"]["dir"] == str(plugins_dir), shown
