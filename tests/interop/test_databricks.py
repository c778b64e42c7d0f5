"""The Databricks agent as FlytePropeller sees it: real flytekitplugins-spark 1.16.31 tasks serialized with
flytekit, sent through flyteidl's stubs to `tern serve`, run by minilake 1.9.0 (the Databricks Jobs API emulator,
subprocess executor) with a stand-in for flytekit's entrypoint that runs the rendered `pyflyte-execute` args, so
the task's own code reads inputs.pb, runs Spark and writes outputs.pb, as on a Databricks cluster.

Peers: minilake's python is $TERN_MINILAKE_PYTHON (scripts/test.sh builds its virtualenv); the task runs with
this virtualenv's python (flytekit, the spark plugin, pyspark; Java from the machine).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
import time
import urllib.request
from collections import OrderedDict
from pathlib import Path

import pytest
from flyteidl.core import literals_pb2
from flyteidl.service import agent_pb2_grpc

from tern_interop import (
    HERE,
    REPO,
    ManagedProcess,
    TernServers,
    child_env,
    create_request,
    delete_request,
    free_port,
    get_request,
    missing_peer,
    explain,
    phase_name,
    poll_until,
    propeller_metadata,
    python_inputs_to_literal_map,
    render_container_args,
    run_command,
    TernServers,
    wait_terminal,
)

PEERS = HERE / "peers"
ENTRYPOINT_PATH = "/Shared/tern/entrypoint.py"
TOKEN = "dapi-tern-interop-not-a-real-token"


def serialize_task(task):
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    settings = SerializationSettings(
        image_config=ImageConfig.auto_default_image(), project="flytesnacks", domain="development", version="v1",
    )
    return get_serializable(OrderedDict(), settings, task).template.to_flyte_idl()


class Minilake:
    def __init__(self, logs_dir: Path, workdir: Path):
        python = os.environ.get("TERN_MINILAKE_PYTHON", "")
        if not python or not Path(python).is_file():
            missing_peer("minilake: TERN_MINILAKE_PYTHON is not set or missing (scripts/test.sh builds its virtualenv "
                         "from tests/interop/requirements-minilake.txt)")
        if shutil.which("java") is None:
            missing_peer("java (pyspark needs a JVM; Debian: openjdk-17-jre-headless)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = child_env({
            "MINILAKE_JOB_EXECUTOR": "subprocess",
            "MINILAKE_NOTEBOOK": "0",
            "MINILAKE_SPARK_PREWARM": "0",
            "MINILAKE_DATA_DIR": str(workdir / "minilake-data"),
            # The job runs `python3 <workspace file> <parameters>` from PATH: this virtualenv's python,
            # with the task module importable.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            # dbx_tasks (the tests' tasks) and examples/warehouse/databricks_tasks (the example's).
            "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO / "examples" / "warehouse")]),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
        })
        self.process = ManagedProcess("minilake", [python, PEERS / "minilake_peer.py", "--port", str(self.port)],
                                      logs_dir / f"minilake-{self.port}.log", env=env)
        poll_until(lambda: self._health(), lambda ok: ok, timeout=60, interval=0.2)

    def _health(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"minilake exited: {self.process.log_text()}")
        try:
            return self.call("GET", "/_minilake/health")["status"] == "ok"
        except OSError:
            return False

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def import_file(self, path: str, source: str) -> None:
        self.call("POST", "/api/2.0/workspace/import", {
            "path": path, "format": "SOURCE", "language": "PYTHON", "overwrite": True,
            "content": base64.b64encode(source.encode()).decode()})

    def runs(self) -> list:
        return self.call("GET", "/api/2.2/jobs/runs/list").get("runs", [])

    def run(self, run_id: int) -> dict:
        return self.call("GET", f"/api/2.2/jobs/runs/get?run_id={run_id}")

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="module")
def minilake(logs_dir, tmp_path_factory):
    m = Minilake(logs_dir, tmp_path_factory.mktemp("minilake"))
    m.import_file(ENTRYPOINT_PATH, (PEERS / "databricks_entrypoint.py").read_text())
    yield m
    m.stop()


def tern_config(tmp_path: Path, minilake: Minilake) -> Path:
    from dbx_tasks import INSTANCE

    path = tmp_path / "tern.toml"
    path.write_text(f"""
[agents.databricks]
host = "{minilake.url}"
token = "env:TERN_TEST_DATABRICKS_TOKEN"
# flytekit's entrypoint lives in Git (flyteorg/flytetools); minilake runs workspace files: the test imported
# its stand-in there.
python_file = "{ENTRYPOINT_PATH}"
python_file_source = "workspace"
# The tasks name their workspace; the gateway maps that name to the emulator.
instances = {{ "{INSTANCE}" = "{minilake.url}" }}
""")
    return path


@pytest.fixture
def tern(tern_bin, logs_dir, tmp_path, minilake, monkeypatch):
    monkeypatch.setenv("TERN_TEST_DATABRICKS_TOKEN", TOKEN)
    config = tern_config(tmp_path, minilake)
    servers = TernServers(tern_bin, logs_dir, config, "tern-serve-databricks")
    yield servers
    servers.stop_all()



def prepared(task, inputs: dict, types: dict, workdir: Path):
    template = serialize_task(task)
    literals = python_inputs_to_literal_map(inputs, types)
    out = render_container_args(template, literals, workdir)
    return template, literals, out


def run_id_of(resource_meta: bytes) -> int:
    m = re.search(rb'"run_id"\s*:\s*"(\d+)"', resource_meta)
    assert m, resource_meta
    return int(m.group(1))


wait_done = wait_terminal


def read_outputs(out: Path) -> literals_pb2.LiteralMap:
    lm = literals_pb2.LiteralMap()
    lm.ParseFromString((out / "outputs.pb").read_bytes())
    return lm


def test_templates_are_flytekits(minilake):
    from dbx_tasks import legacy_greet, spark_sum

    v2 = serialize_task(spark_sum)
    assert (v2.type, v2.task_type_version) == ("databricks", 0)
    custom = json.loads(__import__("google.protobuf.json_format", fromlist=["x"]).MessageToJson(v2.custom))
    assert custom["databricksConf"]["new_cluster"]["num_workers"] == 1
    assert custom["databricksInstance"] == "dbc-tern-interop.cloud.databricks.com"
    assert custom["sparkConf"]["spark.driver.memory"] == "512m"
    assert list(v2.container.args[:2]) == ["pyflyte-execute", "--inputs"]
    assert serialize_task(legacy_greet).type == "spark"


def test_databricks_v2_task_runs_spark_and_writes_its_outputs(tern, minilake, tmp_path):
    from dbx_tasks import spark_sum

    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    template, literals, out = prepared(spark_sum, {"n": 100}, {"n": int}, tmp_path / "v2")
    before = len(minilake.runs())
    req = create_request(template, literals)
    req.output_prefix = str(out)
    meta = stub.CreateTask(req, timeout=30).resource_meta
    assert TOKEN.encode() not in meta, "the token never goes into resource_meta"

    resource = wait_done(stub, "databricks", meta, str(out))
    assert phase_name(resource.phase) == "SUCCEEDED", (resource, minilake.process.log_text())
    assert len(minilake.runs()) == before + 1
    outputs = read_outputs(out)
    assert outputs.literals["o0"].scalar.primitive.integer == 5050, outputs
    assert resource.log_links[0].name == "Databricks Console"
    assert resource.log_links[0].uri.endswith(f"/run/{run_id_of(meta)}")

    # What minilake ran: flytekit's body in the tasks form, the rendered args, our idempotency token.
    run = minilake.run(run_id_of(meta))
    task = run["tasks"][0]
    assert task["task_key"] == "flyte_task"
    assert task["spark_python_task"]["python_file"] == ENTRYPOINT_PATH
    assert task["spark_python_task"]["parameters"][:2] == ["pyflyte-execute", "--inputs"]
    assert str(tmp_path / "v2" / "inputs.pb") in task["spark_python_task"]["parameters"]

    # GetTaskLogs: the task run's output (runs/get-output), as a server stream.
    chunks = list(stub.GetTaskLogs(__import__("flyteidl.admin.agent_pb2", fromlist=["x"]).GetTaskLogsRequest(
        task_type="databricks", resource_meta=meta,
        task_category=__import__("flyteidl.admin.agent_pb2", fromlist=["x"]).TaskCategory(name="databricks", version=0)),
        timeout=30))
    lines = [line.message for c in chunks if c.HasField("body") for line in c.body.structured_lines]
    assert lines, chunks

    # DeleteTask of a finished run is fine, and changes nothing.
    stub.DeleteTask(delete_request("databricks", meta), timeout=30)
    assert phase_name(stub.GetTask(get_request("databricks", meta, str(out)), timeout=30).resource.phase) == "SUCCEEDED"


def test_one_run_per_attempt_across_tern_restarts(tern, minilake, tmp_path):
    """CreateTask twice with one task_execution_id, then again after restarting `tern serve`: one run at minilake."""
    from dbx_tasks import legacy_greet

    template, literals, out = prepared(legacy_greet, {"name": "tern", "times": 2}, {"name": str, "times": int},
                                       tmp_path / "legacy")
    meta_pb = propeller_metadata(template)
    req = create_request(template, literals, meta_pb)
    req.output_prefix = str(out)
    before = {r["run_id"] for r in minilake.runs()}

    (first, second, third), stub = tern.creates_across_a_restart(req)
    assert run_id_of(first) == run_id_of(second) == run_id_of(third)
    new = [r for r in minilake.runs() if r["run_id"] not in before]
    assert len(new) == 1, new

    resource = wait_done(stub, "spark", third, str(out))
    assert phase_name(resource.phase) == "SUCCEEDED", (resource, minilake.process.log_text())
    assert read_outputs(out).literals["o0"].scalar.primitive.string_value == "hello tern hello tern"

    # The next retry attempt is a new run.
    retry = propeller_metadata(template, execution_name=meta_pb.task_execution_id.node_execution_id.execution_id.name,
                               retry_attempt=1)
    req2 = create_request(template, literals, retry)
    req2.output_prefix = str(out)
    fourth = stub.CreateTask(req2, timeout=30).resource_meta
    assert run_id_of(fourth) != run_id_of(first)
    stub.DeleteTask(delete_request("spark", fourth), timeout=30)
    stub.DeleteTask(delete_request("spark", fourth), timeout=30)  # idempotent


def test_a_failing_task_is_failed_not_internal(tern, minilake, tmp_path):
    """A run whose entrypoint exits non-zero: FAILED with the agent's code, a user error."""
    from dbx_tasks import spark_sum

    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    template, literals, out = prepared(spark_sum, {"n": 1}, {"n": int}, tmp_path / "bad")
    # Point the task at a module that does not exist: the entrypoint fails, as a broken image would.
    args = list(template.container.args)
    args[args.index("dbx_tasks")] = "no_such_module_for_tern"
    del template.container.args[:]
    template.container.args.extend(args)
    req = create_request(template, literals)
    req.output_prefix = str(out)
    meta = stub.CreateTask(req, timeout=30).resource_meta
    resource = wait_done(stub, "databricks", meta, str(out), timeout=120)
    assert phase_name(resource.phase) == "FAILED", resource
    assert resource.agent_error.code == "TERN-X009", resource


def test_example_workflow_databricks_then_duckdb(tern_bin, minilake, tmp_path):
    """examples/warehouse/databricks.yaml with databricks.toml, as README.md runs it against the emulator: `tern run`
    renders propeller's container variables ({{.input}}, {{.outputPrefix}}, ...), minilake runs flytekit's task with
    real Spark, the task writes outputs.pb, and the DuckDB node reads its float."""
    example = REPO / "examples" / "warehouse"
    env = {"DATABRICKS_HOST": minilake.url, "DATABRICKS_TOKEN": TOKEN,
           "TERN_AGENTS__DATABRICKS__PYTHON_FILE": ENTRYPOINT_PATH,
           "TERN_AGENTS__DATABRICKS__PYTHON_FILE_SOURCE": "workspace"}
    before = {r["run_id"] for r in minilake.runs()}
    result = run_command([tern_bin, "run", example / "databricks.yaml", "--config", example / "databricks.toml",
                          "--state-dir", tmp_path / "state", "--input", "orders=1000", "--json"],
                         cwd=tmp_path, timeout=300, env=child_env(env))
    assert result.returncode == 0, explain(result)
    summary = json.loads(result.stdout)
    assert summary["phase"] == "SUCCEEDED", summary
    # order i costs 5 + (i % 100) / 10: 1000 orders make 5000 + 10 * 495.
    assert summary["outputs"] == {"revenue": 9950.0, "line": "1000 orders, revenue 9950.00"}, summary
    new = [r for r in minilake.runs() if r["run_id"] not in before]
    assert len(new) == 1, new
    task = minilake.run(new[0]["run_id"])["tasks"][0]
    params = task["spark_python_task"]["parameters"]
    assert not any("{{" in p for p in params), params
    assert params[params.index("--inputs") + 1].endswith("/revenue/0/inputs.pb"), params
