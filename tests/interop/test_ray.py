"""The Ray agent as FlytePropeller sees it: real flytekitplugins-ray 1.16.31 tasks (examples/ray/ray_tasks.py)
serialized with flytekit, sent through flyteidl's stubs to `tern serve`, run as jobs of a real Ray 2.60 head the
test starts. The job's entrypoint is the rendered `pyflyte-execute` args: flytekit reads inputs.pb, joins the
cluster (`ray.init()`), fans out `@ray.remote` work and writes outputs.pb, as on a KubeRay cluster. Jobs are
counted at the head (`GET /api/jobs/`).

Peers: $TERN_RAY_PYTHON's virtualenv (scripts/test.sh builds it from tests/interop/requirements-ray.txt: ray[default],
flytekit, flytekitplugins-ray) runs the head, the jobs and the template serializer; the head gets its own ports and
--temp-dir, and only its own process group is stopped (never `ray stop`, which stops every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2, tasks_pb2
from flyteidl.service import agent_pb2_grpc
from google.protobuf import json_format

from tern_interop import (
    TernServers,
    HERE,
    REPO,
    ManagedProcess,
    child_env,
    create_request,
    delete_request,
    explain,
    free_port,
    get_request,
    missing_peer,
    phase_name,
    poll_until,
    propeller_metadata,
    python_inputs_to_literal_map,
    read_templates,
    render_container_args,
    run_command,
)

PEERS = HERE / "peers"
EXAMPLE = REPO / "examples" / "ray"
TOKEN = "ray-interop-token-not-a-real-one"


def ray_python() -> Path:
    raw = os.environ.get("TERN_RAY_PYTHON", "")
    if not raw or not Path(raw).is_file() or not (Path(raw).parent / "ray").is_file():
        missing_peer(f"Ray (TERN_RAY_PYTHON={raw!r} is not a virtualenv's python with ray); scripts/test.sh builds it "
                     "from tests/interop/requirements-ray.txt and exports TERN_RAY_PYTHON")
    return Path(raw)


class RayHead:
    """`ray start --head --block` in its own process group, on free ports, with its own temp dir."""

    def __init__(self, python: Path, logs_dir: Path):
        bin_dir = python.parent
        # Short: Ray's unix sockets live under the temp dir (108-byte path limit).
        self.tmp = Path(tempfile.mkdtemp(prefix="tern-ray-", dir="/tmp"))
        (self.tmp / "cwd").mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = child_env({
            # The jobs' `python`/`pyflyte-execute` are the Ray virtualenv's; the task module is importable.
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(EXAMPLE),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep every Ray port on 127.0.0.1
        })
        env.pop("RAY_ADDRESS", None)
        self.gcs_port = free_port()
        ports = ["--port", str(self.gcs_port)]
        for flag in ("--ray-client-server-port", "--node-manager-port", "--object-manager-port",
                     "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                     "--metrics-export-port"):
            ports += [flag, str(free_port())]
        argv = [bin_dir / "ray", "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
                "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.port),
                "--disable-usage-stats", "--temp-dir", self.tmp / "r", *ports]
        self.process = ManagedProcess("ray-head", argv, logs_dir / f"ray-head-{self.port}.log", cwd=self.tmp / "cwd",
                                      env=env)
        poll_until(self._ready, lambda ok: ok, timeout=90, interval=0.25)

    def _ready(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"ray start exited: {self.process.describe()}")
        try:
            self.jobs()
            return True
        except OSError:
            return False

    def call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def jobs(self) -> list:
        return self.call("GET", "/api/jobs/")

    def job(self, submission_id: str) -> dict:
        return self.call("GET", f"/api/jobs/{submission_id}")

    def stop(self) -> None:
        # `ray start --block` drains for up to 30 s on SIGTERM: its group is killed after a short grace.
        self.process.stop(timeout=2)
        # The raylet starts workers (and Ray starts job drivers) in sessions of their own: they are this head's
        # when their command line names its temp dir or their environment its GCS address. Nothing else is touched.
        marks = [f"{self.tmp}/".encode(), f"RAY_ADDRESS=127.0.0.1:{self.gcs_port}\0".encode()]
        for _ in range(3):
            ours = []
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit() or int(proc.name) == os.getpid():
                    continue
                try:
                    text = (proc / "cmdline").read_bytes() + b"\0" + (proc / "environ").read_bytes()
                except OSError:
                    continue
                if any(m in text for m in marks):
                    ours.append(int(proc.name))
            if not ours:
                break
            for pid in ours:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.2)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head(logs_dir):
    head = RayHead(ray_python(), logs_dir)
    yield head
    head.stop()


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ray-templates")
    result = run_command([ray_python(), PEERS / "ray_templates.py", out], timeout=300,
                         env=child_env({"PYTHONPATH": str(EXAMPLE)}))
    assert result.returncode == 0, explain(result)
    return read_templates(out)


@pytest.fixture
def tern(tern_bin, logs_dir, tmp_path, ray_head, monkeypatch):
    monkeypatch.setenv("TERN_TEST_RAY_TOKEN", TOKEN)
    config = tmp_path / "tern.toml"
    # The dashboard is not secured; the token only shows it travels by reference and never into a handle.
    config.write_text(f'[agents.ray]\naddress = "{ray_head.url}"\ntoken = "env:TERN_TEST_RAY_TOKEN"\n')
    starter = TernServers(tern_bin, logs_dir, config, "tern-serve-ray")
    yield starter
    starter.stop_all()


def prepared(templates: dict, name: str, inputs: dict, types: dict, workdir: Path):
    """A copy of the named template, rendered as propeller does (inputs.pb written under `workdir`)."""
    template = tasks_pb2.TaskTemplate()
    template.CopyFrom(templates[name])
    literals = python_inputs_to_literal_map(inputs, types)
    return template, literals, render_container_args(template, literals, workdir)


def submission_id_of(resource_meta: bytes) -> str:
    m = re.search(rb'"submission_id"\s*:\s*"([^"]+)"', resource_meta)
    assert m, resource_meta
    return m.group(1).decode()


def wait_done(stub, meta: bytes, prefix: str, timeout: float = 180):
    return poll_until(lambda: stub.GetTask(get_request("ray", meta, prefix), timeout=30).resource,
                      lambda r: phase_name(r.phase) in ("SUCCEEDED", "FAILED", "RETRYABLE_FAILED", "ABORTED"),
                      timeout=timeout, interval=0.5)


def test_templates_are_flytekits(templates):
    t = templates["sum_of_squares"]
    assert (t.type, t.task_type_version) == ("ray", 0)
    custom = json_format.MessageToDict(t.custom)
    assert set(custom) >= {"rayCluster", "runtimeEnvYaml", "shutdownAfterJobFinishes"}, custom
    assert "TERN_RAY_GREETING" in custom["runtimeEnvYaml"], custom
    assert list(t.container.args[:2]) == ["pyflyte-execute", "--inputs"], t.container.args
    assert "ray_tasks" in t.container.args


def test_flytekit_ray_task_runs_on_the_cluster_and_writes_its_outputs(tern, ray_head, templates, tmp_path):
    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    template, literals, out = prepared(templates, "sum_of_squares", {"n": 10}, {"n": int}, tmp_path / "sum")
    before = len(ray_head.jobs())
    req = create_request(template, literals)
    req.output_prefix = str(out)
    meta = stub.CreateTask(req, timeout=30).resource_meta
    assert TOKEN.encode() not in meta, "the token never goes into resource_meta"

    resource = wait_done(stub, meta, str(out))
    assert phase_name(resource.phase) == "SUCCEEDED", (resource, ray_head.process.log_text())
    assert len(ray_head.jobs()) == before + 1
    outputs = literals_pb2.LiteralMap()
    outputs.ParseFromString((out / "outputs.pb").read_bytes())
    assert outputs.literals["o0"].scalar.primitive.integer == sum(i * i for i in range(10)), outputs
    sid = submission_id_of(meta)
    assert resource.log_links[0].name == "Ray Dashboard"
    assert resource.log_links[0].uri == f"{ray_head.url}/#/jobs/{sid}"

    # What Ray ran: the rendered args as the entrypoint, the task's runtime_env and the container's env.
    job = ray_head.job(sid)
    assert job["entrypoint"].startswith("pyflyte-execute --inputs "), job
    assert str(tmp_path / "sum" / "inputs.pb") in job["entrypoint"], job
    assert job["runtime_env"]["env_vars"]["TERN_RAY_GREETING"] == "hello from runtime_env", job

    # GetTaskLogs: the driver's output, as a server stream.
    chunks = list(stub.GetTaskLogs(agent_pb2.GetTaskLogsRequest(
        task_type="ray", resource_meta=meta, task_category=agent_pb2.TaskCategory(name="ray", version=0)), timeout=30))
    lines = [line.message for c in chunks if c.HasField("body") for line in c.body.structured_lines]
    assert any("hello from runtime_env" in line for line in lines), lines

    # DeleteTask of a finished job is fine, and changes nothing.
    stub.DeleteTask(delete_request("ray", meta), timeout=30)
    assert phase_name(stub.GetTask(get_request("ray", meta, str(out)), timeout=30).resource.phase) == "SUCCEEDED"


def test_one_job_per_attempt_across_tern_restarts(tern, ray_head, templates, tmp_path):
    """CreateTask twice with one task_execution_id, then again after restarting `tern serve`: one job at the head."""
    template, literals, out = prepared(templates, "sum_of_squares", {"n": 4}, {"n": int}, tmp_path / "restart")
    meta_pb = propeller_metadata(template)
    req = create_request(template, literals, meta_pb)
    req.output_prefix = str(out)
    before = {j["submission_id"] for j in ray_head.jobs()}

    (first, second, third), stub = tern.creates_across_a_restart(req)
    assert submission_id_of(first) == submission_id_of(second) == submission_id_of(third)
    new = [j for j in ray_head.jobs() if j["submission_id"] not in before]
    assert len(new) == 1, new

    resource = wait_done(stub, third, str(out))
    assert phase_name(resource.phase) == "SUCCEEDED", (resource, ray_head.process.log_text())

    # The next retry attempt is a new job; deleting it stops it (twice is fine).
    sleeper, sleep_inputs, sleep_out = prepared(templates, "sleeps", {"seconds": 120.0}, {"seconds": float},
                                                tmp_path / "sleeps")
    retry = propeller_metadata(sleeper, execution_name=meta_pb.task_execution_id.node_execution_id.execution_id.name,
                               retry_attempt=1)
    req2 = create_request(sleeper, sleep_inputs, retry)
    req2.output_prefix = str(sleep_out)
    fourth = stub.CreateTask(req2, timeout=30).resource_meta
    assert submission_id_of(fourth) != submission_id_of(first)
    poll_until(lambda: ray_head.job(submission_id_of(fourth))["status"], lambda s: s == "RUNNING", timeout=60,
               interval=0.25)
    stub.DeleteTask(delete_request("ray", fourth), timeout=30)
    stub.DeleteTask(delete_request("ray", fourth), timeout=30)
    resource = wait_done(stub, fourth, str(sleep_out), timeout=60)
    assert phase_name(resource.phase) == "ABORTED", resource
    assert ray_head.job(submission_id_of(fourth))["status"] == "STOPPED"


def test_a_failing_task_is_failed_not_internal(tern, ray_head, templates, tmp_path):
    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    template, literals, out = prepared(templates, "fails", {"n": 3}, {"n": int}, tmp_path / "fails")
    req = create_request(template, literals)
    req.output_prefix = str(out)
    meta = stub.CreateTask(req, timeout=30).resource_meta
    resource = wait_done(stub, meta, str(out), timeout=120)
    assert phase_name(resource.phase) == "FAILED", resource
    assert resource.agent_error.code == "TERN-R007", resource
    assert "JOB_ENTRYPOINT_COMMAND_ERROR" in resource.message, resource


def test_example_workflow_ray_then_duckdb(tern_bin, ray_head, tmp_path):
    """examples/ray/ray.yaml with ray.toml, as examples/ray/README.md runs it against a local head: `tern run`
    renders propeller's container variables, Ray runs flytekit's task, the DuckDB node reads its integer."""
    before = len(ray_head.jobs())
    result = run_command([tern_bin, "run", EXAMPLE / "ray.yaml", "--config", EXAMPLE / "ray.toml",
                          "--state-dir", tmp_path / "state", "--input", "n=10", "--json"],
                         cwd=tmp_path, timeout=300, env=child_env({"RAY_ADDRESS": ray_head.url}))
    assert result.returncode == 0, explain(result)
    summary = json.loads(result.stdout)
    assert summary["phase"] == "SUCCEEDED", summary
    assert summary["outputs"] == {"total": 285, "line": "sum of squares below 10: 285"}, summary
    assert len(ray_head.jobs()) == before + 1
