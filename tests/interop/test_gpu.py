"""The GPU agent as FlytePropeller sees it: flytekit 1.16.31 tasks asking for a GPU (`accelerator=T4`,
`Resources(gpu="1")`, task type `gpu`: gpu_tasks.py) serialized with flytekit, sent through flyteidl's stubs to
`tern serve`, run on this host by the agent with flytekit's own `pyflyte-execute`.

This machine has no GPU: the no-GPU test uses the real inventory (NVML cannot load: the create is refused at once
with TERN-U002), the others the test-only `fake_devices` (two made-up T4s): device assignment through
CUDA_VISIBLE_DEVICES, the queue, and one job across a `tern serve` restart, counted by what ran. The real NVML
path is scripts/gpu-check.sh's, on a GPU host.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from flyteidl.core import literals_pb2, tasks_pb2
from flyteidl.service import agent_pb2_grpc

from tern_interop import (
    HERE,
    TernServers,
    create_request,
    get_request,
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
import gpu_tasks
settings = SerializationSettings(image_config=ImageConfig.auto_default_image(), project="flytesnacks",
                                 domain="development", version="v1")
task = getattr(gpu_tasks, sys.argv[1])
sys.stdout.buffer.write(get_serializable(OrderedDict(), settings, task).template.to_flyte_idl().SerializeToString())
"""

FAKE_T4S = """fake_devices = [{ index = 0, uuid = "GPU-fake-0", name = "Tesla T4" },
                { index = 1, uuid = "GPU-fake-1", name = "Tesla T4" }]"""


@functools.lru_cache(maxsize=None)
def serialized(name: str) -> bytes:
    out = subprocess.run([sys.executable, "-c", SERIALIZE, name], cwd=HERE, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout


def serialize(name: str) -> tasks_pb2.TaskTemplate:
    template = tasks_pb2.TaskTemplate()
    template.ParseFromString(serialized(name))
    return template


def servers(tern_bin, logs_dir, tmp_path, monkeypatch, devices: str, name: str) -> TernServers:
    # pyflyte-execute is this virtualenv's; gpu_tasks.py is beside this file.
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    config = tmp_path / f"{name}.toml"
    config.write_text(f"""
[agents.gpu]
enabled = true
state_dir = "{tmp_path / 'state'}"
inherit_env = ["PATH", "HOME", "LANG", "PYTHONPATH"]
{devices}

[data_store]
root = "{tmp_path}"
""")
    return TernServers(tern_bin, logs_dir, config, name)


@pytest.fixture
def tern(tern_bin, logs_dir, tmp_path, monkeypatch):
    """`tern serve` with the gpu agent and two fake T4s (state in tmp_path/state), as often as a test asks."""
    s = servers(tern_bin, logs_dir, tmp_path, monkeypatch, FAKE_T4S, "tern-serve-gpu")
    yield s
    s.stop_all()


def prepared(inputs: dict, workdir: Path):
    template = serialize("visible_devices")
    literals = python_inputs_to_literal_map(inputs, {"marker": str, "pause": float})
    out = render_container_args(template, literals, workdir)
    req = create_request(template, literals)
    req.output_prefix = str(out)
    return req, out


def status(stub, meta: bytes, out: Path):
    return stub.GetTask(get_request("gpu", meta, str(out)), timeout=30).resource


def wait_phase(stub, meta: bytes, out: Path, phases: tuple, timeout: float = 90):
    return poll_until(lambda: status(stub, meta, out), lambda r: phase_name(r.phase) in phases,
                      timeout=timeout, interval=0.3)


DONE = ("SUCCEEDED", "FAILED", "RETRYABLE_FAILED", "ABORTED")


def test_the_template_is_flytekits():
    template = serialize("visible_devices")
    assert (template.type, template.task_type_version) == ("gpu", 0)
    assert template.extended_resources.gpu_accelerator.device == "nvidia-tesla-t4"
    gpu = tasks_pb2.Resources.ResourceName.Value("GPU")
    assert [(e.name, e.value) for e in template.container.resources.limits if e.name == gpu] == [(gpu, "1")]
    assert list(template.container.args[:3]) == ["pyflyte-execute", "--inputs", "{{.input}}"]


def test_a_gpu_task_runs_once_on_its_device_across_tern_restarts(tern, tmp_path):
    marker = tmp_path / "runs.txt"
    req, out = prepared({"marker": str(marker), "pause": 4.0}, tmp_path / "job")
    (first, second, third), stub = tern.creates_across_a_restart(req)
    assert first == second == third
    resource = wait_phase(stub, third, out, DONE)
    assert phase_name(resource.phase) == "SUCCEEDED", (resource, tern.servers[-1].process.log_text())
    outputs = literals_pb2.LiteralMap()
    outputs.ParseFromString((out / "outputs.pb").read_bytes())
    assert outputs.literals["o0"].scalar.primitive.string_value == "GPU-fake-0"
    assert marker.read_text().count("run") == 1
    jobs = list((tmp_path / "state" / "jobs").iterdir())
    assert len(jobs) == 1, jobs
    assert json.loads((jobs[0] / "devices.json").read_text())["devices"][0]["uuid"] == "GPU-fake-0"


def test_a_third_task_queues_until_a_device_frees(tern, tmp_path):
    stub = agent_pb2_grpc.AsyncAgentServiceStub(tern().channel())
    marker = tmp_path / "runs.txt"
    jobs = []
    for name, pause in (("a", 3.0), ("b", 3.0), ("c", 0.0)):
        req, out = prepared({"marker": str(marker), "pause": pause}, tmp_path / name)
        req.task_execution_metadata.task_execution_id.node_execution_id.node_id = name
        jobs.append((stub.CreateTask(req, timeout=30).resource_meta, out))
    queued = status(stub, *jobs[2])
    assert phase_name(queued.phase) == "QUEUED", queued
    assert "position 1 of 1" in queued.message, queued.message
    results = [wait_phase(stub, meta, out, DONE) for meta, out in jobs]
    assert [phase_name(r.phase) for r in results] == ["SUCCEEDED"] * 3, results
    devices = [r.outputs.literals["o0"].scalar.primitive.string_value for r in results]
    assert sorted(devices[:2]) == ["GPU-fake-0", "GPU-fake-1"] and devices[2] in devices[:2], devices
    assert marker.read_text().count("run") == 3


def test_a_host_without_gpus_refuses_the_task_at_once(tern_bin, logs_dir, tmp_path, monkeypatch):
    if Path("/proc/driver/nvidia").exists():
        pytest.skip("this host has the NVIDIA driver: scripts/gpu-check.sh covers it")
    s = servers(tern_bin, logs_dir, tmp_path, monkeypatch, "", "tern-serve-gpu-nvml")
    try:
        stub = agent_pb2_grpc.AsyncAgentServiceStub(s().channel())
        req, _ = prepared({"marker": str(tmp_path / "runs.txt"), "pause": 0.0}, tmp_path / "job")
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateTask(req, timeout=30)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION, info.value.details()
        details = info.value.details()
        assert "TERN-U002" in details and "1 × nvidia-tesla-t4" in details and "NVML cannot be loaded" in details, details
        assert not (tmp_path / "runs.txt").exists()
    finally:
        s.stop_all()
