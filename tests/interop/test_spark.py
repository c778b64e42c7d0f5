"""The Spark agent as FlytePropeller sees it: a real flytekitplugins-spark 1.16.31 `Spark` task serialized with
flytekit, sent through flyteidl's stubs to `tern serve`, submitted to a Spark 4.3.0 standalone master (the pyspark
wheel's Master and a 2-core Worker, REST submission server on) in cluster mode: the driver runs flytekit's
entrypoint with the rendered `pyflyte-execute` args, reads inputs.pb, runs Spark on the cluster and writes
outputs.pb. The gateway's Databricks agent is configured with `task_types = ["databricks"]`, so `spark` is the
Spark agent's.

Peer: pyspark from $TERN_SPARK_PYTHON, else this virtualenv (tests/interop/requirements.txt pins pyspark 4.3.0);
Java from the machine.
"""

from __future__ import annotations

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
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2
from flyteidl.service import agent_pb2_grpc

from tern_interop import (
    HERE,
    REPO,
    explain,
    run_command,
    ManagedProcess,
    child_env,
    create_request,
    delete_request,
    free_port,
    get_request,
    missing_peer,
    phase_name,
    poll_until,
    propeller_metadata,
    python_inputs_to_literal_map,
    render_container_args,
    TernServers,
    wait_terminal,
)


def spark_python() -> str:
    python = os.environ.get("TERN_SPARK_PYTHON") or sys.executable
    if not Path(python).is_file():
        missing_peer(f"pyspark: TERN_SPARK_PYTHON={python!r} does not exist")
    return python


class Standalone:
    """A Spark standalone master (REST on) and one worker with 2 cores (1 would leave the driver no executor)."""

    def __init__(self, logs_dir: Path, workdir: Path):
        self.python = spark_python()
        if shutil.which("java") is None:
            missing_peer("java (Spark needs a JVM; Debian: openjdk-17-jre-headless)")
        probe = __import__("subprocess").run([self.python, "-c", "import pyspark, os; print(os.path.dirname(pyspark.__file__))"],
                                             capture_output=True, text=True)
        if probe.returncode != 0:
            missing_peer(f"pyspark is not importable from {self.python}")
        home = probe.stdout.strip()
        spark_class = Path(self.python).parent / "spark-class"
        if not spark_class.is_file():
            spark_class = Path(home) / "bin" / "spark-class"
        port, ui, rest, wui = free_port(), free_port(), free_port(), free_port()
        conf = workdir / "spark.conf"
        conf.write_text(f"spark.master.rest.enabled true\nspark.master.rest.host 127.0.0.1\nspark.master.rest.port {rest}\n")
        self.work_dir = workdir / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.home = home
        # Drivers inherit the worker's environment: the example's task module (examples/spark) is found there.
        env = child_env({"SPARK_HOME": home, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": self.python,
                         "PYTHONPATH": str(REPO / "examples" / "spark")})
        self.master_url = f"spark://127.0.0.1:{port}"
        self.rest_url = f"http://127.0.0.1:{rest}"
        self.ui_url = f"http://127.0.0.1:{ui}"
        self.master = ManagedProcess("spark-master", [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                                      "--port", port, "--webui-port", ui, "--properties-file", conf],
                                     logs_dir / f"spark-master-{port}.log", env=env)
        self.worker = ManagedProcess("spark-worker", [spark_class, "org.apache.spark.deploy.worker.Worker", self.master_url,
                                                      "--host", "127.0.0.1", "--cores", "2", "--memory", "2g", "--webui-port", wui,
                                                      "--work-dir", self.work_dir, "--properties-file", conf],
                                     logs_dir / f"spark-worker-{port}.log", env=env)
        try:
            poll_until(self._ready, lambda ok: ok, timeout=90, interval=0.25)
        except BaseException:
            self.stop()  # never leave a master or worker behind a failed start
            raise

    def _ready(self) -> bool:
        if not self.master.alive():
            raise AssertionError(f"the Spark master exited: {self.master.log_text()}")
        try:
            return self.state().get("aliveworkers", 0) >= 1
        except (OSError, ValueError):  # not listening yet, or its UI still starting (an HTML page)
            return False

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=10) as r:
            return json.loads(r.read())

    def drivers(self) -> list:
        s = self.state()
        return s.get("activedrivers", []) + s.get("completeddrivers", [])

    def stop(self) -> None:
        self.worker.stop()
        self.master.stop()


@pytest.fixture(scope="module")
def standalone(logs_dir, tmp_path_factory):
    s = Standalone(logs_dir, tmp_path_factory.mktemp("spark"))
    yield s
    s.stop()


def tern_config(root: Path, spark: Standalone) -> Path:
    path = root / "tern.toml"
    path.write_text(f"""
[agents.spark]
mode = "standalone"
rest_url = "{spark.rest_url}"
master = "{spark.master_url}"
ui_url = "{spark.ui_url}"
worker_work_dir = "{spark.work_dir}"
# The driver imports the task module (spark_tasks) from tests/interop.
env = {{ SPARK_LOCAL_IP = "127.0.0.1", PYTHONPATH = "{HERE}" }}

# `spark` is the Spark agent's here: Databricks keeps its own type only.
[agents.databricks]
task_types = ["databricks"]

[data_store]
root = "{root / 'data'}"
""")
    return path


@pytest.fixture
def tern(tern_bin, logs_dir, tmp_path, standalone):
    (tmp_path / "data").mkdir()
    config = tern_config(tmp_path, standalone)
    servers = TernServers(tern_bin, logs_dir, config, "tern-serve-spark")
    yield servers
    servers.stop_all()


def serialize_task(task, python: str):
    """As `pyflyte register` for an image whose python is this virtualenv's (`--python-interpreter`): flytekit then
    writes that python as `executorPath` and its virtualenv's `bin/entrypoint.py` as `mainApplicationFile`."""
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    settings = SerializationSettings(
        image_config=ImageConfig.auto_default_image(), project="flytesnacks", domain="development", version="v1",
        python_interpreter=python,
    )
    return get_serializable(OrderedDict(), settings, task).template.to_flyte_idl()


def prepared(python: str, inputs: dict, types: dict, workdir: Path):
    """Propeller's part: inputs.pb written, the container args' template variables rendered."""
    from spark_tasks import spark_sum

    template = serialize_task(spark_sum, python)
    literals = python_inputs_to_literal_map(inputs, types)
    out = render_container_args(template, literals, workdir)
    return template, literals, out


def submission_id(meta: bytes) -> str:
    m = re.search(rb'"submission_id"\s*:\s*"(driver-[0-9-]+)"', meta)
    assert m, meta
    return m.group(1).decode()


def wait_done(stub, meta: bytes, prefix: str, timeout: float = 180):
    return wait_terminal(stub, "spark", meta, prefix, timeout)


def request(template, literals, out: Path, meta=None):
    req = create_request(template, literals, meta)
    req.output_prefix = str(out)
    return req


def test_the_template_is_flytekits(standalone):
    from google.protobuf.json_format import MessageToDict
    from spark_tasks import spark_sum

    t = serialize_task(spark_sum, standalone.python)
    assert (t.type, t.task_type_version) == ("spark", 0)
    custom = MessageToDict(t.custom)
    assert custom["mainApplicationFile"].startswith("local:///") and custom["mainApplicationFile"].endswith("/bin/entrypoint.py")
    assert custom["executorPath"] == standalone.python
    assert custom["sparkConf"]["spark.cores.max"] == "1"
    assert list(t.container.args[:2]) == ["pyflyte-execute", "--inputs"]


def test_spark_task_runs_on_the_standalone_master_and_writes_its_outputs(tern, standalone, tmp_path):
    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    template, literals, out = prepared(standalone.python, {"n": 100}, {"n": int}, tmp_path / "data" / "sum")
    before = len(standalone.drivers())
    meta = stub.CreateTask(request(template, literals, out), timeout=30).resource_meta
    resource = wait_done(stub, meta, str(out))
    assert phase_name(resource.phase) == "SUCCEEDED", (resource, standalone.worker.log_text())
    assert len(standalone.drivers()) == before + 1
    outputs = literals_pb2.LiteralMap()
    outputs.ParseFromString((out / "outputs.pb").read_bytes())
    assert outputs.literals["o0"].scalar.primitive.integer == 5050, outputs
    assert resource.log_links[0].name == "Spark Master" and resource.log_links[0].uri == standalone.ui_url

    # What the master ran: our application name, flytekit's entrypoint, the rendered args.
    driver = [d for d in standalone.drivers() if d["id"] == submission_id(meta)]
    assert driver and driver[0]["state"] == "FINISHED", standalone.drivers()

    # GetTaskLogs: the driver's stdout/stderr from the worker's work dir, as a server stream.
    chunks = list(stub.GetTaskLogs(agent_pb2.GetTaskLogsRequest(
        task_type="spark", resource_meta=meta, task_category=agent_pb2.TaskCategory(name="spark", version=0)), timeout=30))
    lines = [line.message for c in chunks if c.HasField("body") for line in c.body.structured_lines]
    assert any(f"tern-spark: master {standalone.master_url}" in line for line in lines), lines[-40:]

    # DeleteTask of a finished driver is fine, and changes nothing.
    stub.DeleteTask(delete_request("spark", meta), timeout=30)
    assert phase_name(stub.GetTask(get_request("spark", meta, str(out)), timeout=30).resource.phase) == "SUCCEEDED"


def test_one_driver_per_attempt_across_tern_restarts(tern, standalone, tmp_path):
    """CreateTask twice with one task_execution_id, then again after restarting `tern serve`: one driver at the master."""
    template, literals, out = prepared(standalone.python, {"n": 10}, {"n": int}, tmp_path / "data" / "restart")
    meta_pb = propeller_metadata(template)
    before = {d["id"] for d in standalone.drivers()}

    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    first = stub.CreateTask(request(template, literals, out, meta_pb), timeout=30).resource_meta
    second = stub.CreateTask(request(template, literals, out, meta_pb), timeout=30).resource_meta
    server.process.stop()
    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    third = stub.CreateTask(request(template, literals, out, meta_pb), timeout=30).resource_meta
    assert submission_id(first) == submission_id(second) == submission_id(third)
    new = [d for d in standalone.drivers() if d["id"] not in before]
    assert len(new) == 1, new
    resource = wait_done(stub, third, str(out))
    assert phase_name(resource.phase) == "SUCCEEDED", resource

    # The next retry attempt (its own output prefix, as propeller gives it) is a new driver; deleting it kills it.
    retry = propeller_metadata(template, execution_name=meta_pb.task_execution_id.node_execution_id.execution_id.name,
                               retry_attempt=1)
    fourth = stub.CreateTask(request(template, literals, tmp_path / "data" / "restart" / "retry1", retry), timeout=30).resource_meta
    assert submission_id(fourth) != submission_id(first)
    stub.DeleteTask(delete_request("spark", fourth), timeout=30)
    stub.DeleteTask(delete_request("spark", fourth), timeout=30)  # idempotent
    resource = wait_done(stub, fourth, "", timeout=60)
    assert phase_name(resource.phase) == "ABORTED", resource


def test_a_failing_task_is_failed_not_internal(tern, standalone, tmp_path):
    """A driver whose task module does not exist exits non-zero: FAILED with TERN-Z004, a user error."""
    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    template, literals, out = prepared(standalone.python, {"n": 1}, {"n": int}, tmp_path / "data" / "bad")
    args = list(template.container.args)
    args[args.index("spark_tasks")] = "no_such_module_for_tern"
    del template.container.args[:]
    template.container.args.extend(args)
    meta = stub.CreateTask(request(template, literals, out), timeout=30).resource_meta
    resource = wait_done(stub, meta, str(out), timeout=120)
    assert phase_name(resource.phase) == "FAILED", resource
    assert resource.agent_error.code == "TERN-Z004", resource


EXAMPLE = REPO / "examples" / "spark"


def example_env(spark: Standalone, **extra: str) -> dict:
    venv_bin = Path(spark.python).parent
    return child_env({"TERN_AGENTS__SPARK__REST_URL": spark.rest_url, "TERN_AGENTS__SPARK__MASTER": spark.master_url,
                      "TERN_AGENTS__SPARK__UI_URL": spark.ui_url, "TERN_AGENTS__SPARK__PYTHON": spark.python,
                      "TERN_AGENTS__SPARK__MAIN_APPLICATION_FILE": str(venv_bin / "entrypoint.py"), **extra})


def run_example(tern_bin, config: Path, tmp_path: Path, env: dict) -> dict:
    result = run_command([tern_bin, "run", EXAMPLE / "spark.yaml", "--config", config, "--state-dir", tmp_path / "state",
                          "--input", "orders=1000", "--json"], cwd=tmp_path, timeout=300, env=env)
    assert result.returncode == 0, explain(result)
    summary = json.loads(result.stdout)
    assert summary["phase"] == "SUCCEEDED", summary
    # order i costs 5 + (i % 100) / 10: 1000 orders make 5000 + 10 * 495.
    assert summary["outputs"] == {"revenue": 9950.0, "line": "1000 orders, revenue 9950.00"}, summary
    return summary


def test_example_workflow_on_the_standalone_master(tern_bin, standalone, tmp_path):
    """examples/spark/spark.yaml with spark.toml, as its README runs it: `tern run` renders propeller's container
    variables, the master runs flytekit's task with real Spark, the DuckDB node reads its float."""
    before = {d["id"] for d in standalone.drivers()}
    run_example(tern_bin, EXAMPLE / "spark.toml", tmp_path, example_env(standalone))
    new = [d for d in standalone.drivers() if d["id"] not in before]
    assert len(new) == 1 and new[0]["state"] == "FINISHED", new


def test_example_workflow_in_local_mode(tern_bin, standalone, tmp_path):
    """The README's local mode: spark-submit --master local[2] on this host (opted in with enabled = true)."""
    venv_bin = Path(standalone.python).parent
    config = tmp_path / "spark-local.toml"
    config.write_text(f"""
[agents.spark]
mode = "local"
enabled = true
spark_submit = "{venv_bin / 'spark-submit'}"
python = "{standalone.python}"
main_application_file = "{venv_bin / 'entrypoint.py'}"
work_dir = "{tmp_path / 'jobs'}"
env = {{ SPARK_LOCAL_IP = "127.0.0.1", PYTHONPATH = "{EXAMPLE}" }}
[agents.databricks]
task_types = ["databricks"]
""")
    before = len(standalone.drivers())
    run_example(tern_bin, config, tmp_path, child_env({"SPARK_HOME": standalone.home}))
    assert len(standalone.drivers()) == before, "local mode never reaches the cluster"
    assert len(list((tmp_path / "jobs").iterdir())) == 1, "one spark-submit"
