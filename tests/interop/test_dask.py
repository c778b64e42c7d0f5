"""The Dask agent as FlytePropeller sees it: real flytekitplugins-dask 1.16.31 tasks serialized with flytekit, sent
through flyteidl's stubs to `tern serve`, run on this host by the agent with an ephemeral local cluster of real
`distributed` 2026.8.0 (scheduler + two workers sized from the DaskJob): flytekit's own `pyflyte-execute` reads
inputs.pb, computes on the cluster and writes outputs.pb.

Peer: $TERN_DASK_PYTHON, the virtualenv of tests/interop/requirements-dask.txt (distributed, flytekit and
flytekitplugins-dask; scripts/test.sh builds it). The main virtualenv has no flytekitplugins-dask: the tasks are
serialized by that python.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from flyteidl.admin import agent_pb2 as admin
from flyteidl.core import literals_pb2, tasks_pb2
from flyteidl.service import agent_pb2_grpc
from google.protobuf.json_format import MessageToDict

from tern_interop import (
    HERE,
    TernServers,
    create_request,
    delete_request,
    get_request,
    missing_peer,
    phase_name,
    poll_until,
    python_inputs_to_literal_map,
    render_container_args,
)

SERIALIZE = """
import sys
from collections import OrderedDict
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
import dask_tasks
settings = SerializationSettings(image_config=ImageConfig.auto_default_image(), project="flytesnacks",
                                 domain="development", version="v1")
task = getattr(dask_tasks, sys.argv[1])
sys.stdout.buffer.write(get_serializable(OrderedDict(), settings, task).template.to_flyte_idl().SerializeToString())
"""


@pytest.fixture(scope="module")
def dask_python() -> Path:
    raw = os.environ.get("TERN_DASK_PYTHON")
    if not raw or not Path(raw).is_file():
        missing_peer(f"TERN_DASK_PYTHON ({raw!r}) is not a python with tests/interop/requirements-dask.txt")
    return Path(raw)


def serialize(python: Path, name: str) -> tasks_pb2.TaskTemplate:
    out = subprocess.run([str(python), "-c", SERIALIZE, name], cwd=HERE, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    template = tasks_pb2.TaskTemplate()
    template.ParseFromString(out.stdout)
    return template


@pytest.fixture
def tern(tern_bin, logs_dir, tmp_path, dask_python, monkeypatch):
    """Starts `tern serve` with the Dask agent enabled (state in tmp_path/state), as often as a test asks."""
    monkeypatch.setenv("PYTHONPATH", str(HERE))  # where dask_tasks.py is, for pyflyte-execute
    config = tmp_path / "tern.toml"
    config.write_text(f"""
[agents.dask]
enabled = true
python = "{dask_python}"
state_dir = "{tmp_path / 'state'}"
inherit_env = ["PATH", "HOME", "LANG", "PYTHONPATH"]

[data_store]
root = "{tmp_path}"
""")
    servers = TernServers(tern_bin, logs_dir, config, "tern-serve-dask")
    yield servers
    servers.stop_all()


def prepared(template: tasks_pb2.TaskTemplate, inputs: dict, types: dict, workdir: Path):
    literals = python_inputs_to_literal_map(inputs, types)
    out = render_container_args(template, literals, workdir)
    req = create_request(template, literals)
    req.output_prefix = str(out)
    return req, out


def wait_done(stub, meta: bytes, prefix: str, timeout: float = 120):
    return poll_until(lambda: stub.GetTask(get_request("dask", meta, prefix), timeout=30).resource,
                      lambda r: phase_name(r.phase) in ("SUCCEEDED", "FAILED", "RETRYABLE_FAILED", "ABORTED"),
                      timeout=timeout, interval=0.3)


def logs_of(stub, meta: bytes) -> list:
    chunks = stub.GetTaskLogs(admin.GetTaskLogsRequest(task_type="dask", resource_meta=meta,
                                                       task_category=admin.TaskCategory(name="dask", version=0)),
                              timeout=30)
    return [line.message for c in chunks if c.HasField("body") for line in c.body.structured_lines]


def test_the_template_is_flytekits(dask_python):
    template = serialize(dask_python, "squares")
    assert (template.type, template.task_type_version) == ("dask", 0)
    custom = MessageToDict(template.custom)
    assert custom["workers"]["numberOfWorkers"] == 2
    assert {"name": "MEMORY", "value": "600Mi"} in custom["workers"]["resources"]["limits"]
    assert list(template.container.args[:3]) == ["pyflyte-execute", "--inputs", "{{.input}}"]


def test_a_dask_task_runs_on_its_local_cluster_once_across_tern_restarts(tern, dask_python, tmp_path):
    template = serialize(dask_python, "squares")
    marker = tmp_path / "runs.txt"
    req, out = prepared(template, {"n": 100, "marker": str(marker), "pause": 4.0},
                        {"n": int, "marker": str, "pause": float}, tmp_path / "job")

    # The gateway restarts while the task runs (its 4 s pause): the job is not the gateway's child.
    (first, second, third), stub = tern.creates_across_a_restart(req)
    server = tern.servers[-1]
    assert first == second == third

    resource = wait_done(stub, third, str(out))
    lines = logs_of(stub, third)
    assert phase_name(resource.phase) == "SUCCEEDED", (resource, lines, server.process.log_text())
    outputs = literals_pb2.LiteralMap()
    outputs.ParseFromString((out / "outputs.pb").read_bytes())
    assert outputs.literals["o0"].scalar.primitive.integer == sum(x * x for x in range(100))
    assert resource.outputs.literals["o0"].scalar.primitive.integer == 328350
    assert any("tern-dask squares(100) = 328350" in l for l in lines), lines
    assert any(l.startswith("[dask scheduler]") for l in lines), lines
    # Counted twice over: lines the task appended when it ran, and the agent's job records.
    assert marker.read_text().count("run") == 1
    jobs = list((tmp_path / "state" / "jobs").iterdir())
    assert len(jobs) == 1, jobs
    record = json.loads((jobs[0] / "record.json").read_text())
    assert record["mode"] == "local" and record["outputs"] == ["o0"], record

    # DeleteTask of a finished job changes nothing; the next retry attempt is a new job.
    stub.DeleteTask(delete_request("dask", third), timeout=30)
    assert phase_name(stub.GetTask(get_request("dask", third, str(out)), timeout=30).resource.phase) == "SUCCEEDED"


def test_a_failing_task_is_failed_with_its_error(tern, dask_python, tmp_path):
    req, out = prepared(serialize(dask_python, "fails"), {"n": 7}, {"n": int}, tmp_path / "fails")
    stub = agent_pb2_grpc.AsyncAgentServiceStub(tern().channel())
    meta = stub.CreateTask(req, timeout=30).resource_meta
    resource = wait_done(stub, meta, str(out))
    assert phase_name(resource.phase) == "FAILED", resource
    assert resource.agent_error.code == "TERN-Y003", resource
    assert "tern-dask refuses 7" in resource.message, resource.message


def test_delete_kills_a_running_task(tern, dask_python, tmp_path):
    marker = tmp_path / "runs.txt"
    req, out = prepared(serialize(dask_python, "squares"), {"n": 10, "marker": str(marker), "pause": 600.0},
                        {"n": int, "marker": str, "pause": float}, tmp_path / "slow")
    stub = agent_pb2_grpc.AsyncAgentServiceStub(tern().channel())
    meta = stub.CreateTask(req, timeout=30).resource_meta
    poll_until(lambda: stub.GetTask(get_request("dask", meta, str(out)), timeout=30).resource,
               lambda r: phase_name(r.phase) == "RUNNING", timeout=90, interval=0.3)
    stub.DeleteTask(delete_request("dask", meta), timeout=30)
    stub.DeleteTask(delete_request("dask", meta), timeout=30)
    resource = stub.GetTask(get_request("dask", meta, str(out)), timeout=30).resource
    assert phase_name(resource.phase) == "ABORTED", resource
    assert not marker.exists()
