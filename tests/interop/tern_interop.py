"""Shared helpers for Tern's Python interop tests.

Everything here speaks the wire protocol through flyteidl's OWN generated stubs and messages, shaped like the
requests FlytePropeller sends, so a passing test means a real Flyte peer can talk to Tern.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import grpc
import pytest
from flyteidl.admin import agent_pb2 as admin
from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2, tasks_pb2, types_pb2
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONNECTORS_DIR = HERE / "connectors"
WORKFLOWS_DIR = HERE / "workflows"

CI = os.environ.get("CI", "").strip().lower() == "true"

AGENT_SERVICES = (
    "flyteidl.service.AsyncAgentService",
    "flyteidl.service.SyncAgentService",
    "flyteidl.service.AgentMetadataService",
)


def missing_peer(message: str) -> None:
    """Skip (locally) or fail (CI=true) a test whose peer or binary is missing. Never returns."""
    if CI:
        pytest.fail(f"missing peer: {message} (CI=true: a missing peer fails the run, it never skips)", pytrace=False)
    pytest.skip(f"missing peer: {message}")


# --------------------------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    # Everything in these tests is on loopback: never let a proxy setting intercept it.
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "grpc_proxy"):
        env.pop(key, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.setdefault("RUST_BACKTRACE", "1")
    if extra:
        env.update(extra)
    return env


class ManagedProcess:
    """A child process in its own process group, with its output captured to a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, cwd: Optional[Path] = None,
                 env: Optional[Dict[str, str]] = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=str(cwd) if cwd else None,
            env=env if env is not None else child_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: teardown kills the whole tree
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self, limit: int = 20000) -> str:
        try:
            self._log.flush()
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-limit:]

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM the process group, then SIGKILL it if it does not exit within `timeout`. Returns exit code."""
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever the leader did, leave no member of its group behind.
        self.signal_group(signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        return self.proc.returncode

    def describe(self) -> str:
        return f"{self.name} (pid {self.proc.pid}, exit {self.proc.poll()}): {' '.join(self.argv)}\n--- log ---\n{self.log_text()}"


def health_status(channel: grpc.Channel, service: str = "", timeout: float = 2.0) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status


def wait_until_serving(proc: ManagedProcess, address: str, timeout: float = 30.0) -> None:
    """Poll grpc.health.v1 Check("") until SERVING; fail early, with the log, if the process dies."""
    deadline = time.monotonic() + timeout
    last_error: object = None
    with grpc.insecure_channel(address) as channel:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited before it was ready\n{proc.describe()}")
            try:
                if health_status(channel, "", timeout=1.0) == health_pb2.HealthCheckResponse.SERVING:
                    return
                last_error = "status not SERVING yet"
            except grpc.RpcError as e:  # not listening yet
                last_error = f"{e.code()}: {e.details()}"
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not SERVING on {address} after {timeout:.0f}s ({last_error})\n{proc.describe()}")


@dataclass
class Server:
    kind: str  # "tern" or "flytekit"
    address: str
    process: ManagedProcess

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)


def start_tern_server(tern_bin: Path, logs_dir: Path, extra_args: Optional[List[str]] = None,
                      name: str = "tern-serve") -> Server:
    port = free_port()
    address = f"127.0.0.1:{port}"
    proc = ManagedProcess(name, [tern_bin, "serve", "--addr", address, *(extra_args or [])],
                          logs_dir / f"{name}-{port}.log", env=child_env({"RUST_LOG": os.environ.get("RUST_LOG", "info")}))
    try:
        wait_until_serving(proc, address, timeout=30)
    except Exception:
        proc.stop()
        raise
    return Server("tern", address, proc)


class TernServers:
    """`tern serve` with one config, started (and restarted) on demand; `stop_all` stops every one started."""

    def __init__(self, tern_bin: Path, logs_dir: Path, config: Path, name: str):
        self.tern_bin, self.logs_dir, self.config, self.name = tern_bin, logs_dir, config, name
        self.servers: List[Server] = []

    def start(self) -> Server:
        s = start_tern_server(self.tern_bin, self.logs_dir, ["--config", str(self.config)], name=self.name)
        self.servers.append(s)
        return s

    __call__ = start

    def stop_all(self) -> None:
        for s in self.servers:
            s.process.stop()

    def creates_across_a_restart(self, req: admin.CreateTaskRequest):
        """CreateTask twice, restart `tern serve`, CreateTask once more, all with `req`: the three resource_meta, and
        an AsyncAgentService stub of the server now running."""
        from flyteidl.service import agent_pb2_grpc

        stub = agent_pb2_grpc.AsyncAgentServiceStub(self().channel())
        first = stub.CreateTask(req, timeout=30).resource_meta
        second = stub.CreateTask(req, timeout=30).resource_meta
        self.servers[-1].process.stop()
        stub = agent_pb2_grpc.AsyncAgentServiceStub(self().channel())
        third = stub.CreateTask(req, timeout=30).resource_meta
        return (first, second, third), stub


def render_container_args(template: tasks_pb2.TaskTemplate, literals: literals_pb2.LiteralMap,
                          workdir: Path) -> Path:
    """Propeller's part before CreateTask, in place: `workdir/inputs.pb` written, the container args' template
    variables ({{.input}}, {{.outputPrefix}}, ...) rendered to local paths under `workdir`. Returns the output
    prefix (`workdir/outputs`), where flytekit's entrypoint writes outputs.pb."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "inputs.pb").write_bytes(literals.SerializeToString())
    out = workdir / "outputs"
    out.mkdir(exist_ok=True)
    values = {"{{.input}}": workdir / "inputs.pb", "{{.inputPrefix}}": workdir, "{{.outputPrefix}}": out,
              "{{.rawOutputDataPrefix}}": workdir / "raw", "{{.checkpointOutputPrefix}}": workdir / "checkpoint",
              "{{.prevCheckpointPrefix}}": ""}
    rendered = []
    for arg in template.container.args:
        for variable, value in values.items():
            arg = arg.replace(variable, str(value))
        rendered.append(arg)
    del template.container.args[:]
    template.container.args.extend(rendered)
    return out


def read_templates(directory: Path) -> Dict[str, tasks_pb2.TaskTemplate]:
    """The TaskTemplates a plugin's template script wrote (peers/flytekit_templates.py), by name."""
    found = {}
    for path in Path(directory).glob("*.pb"):
        template = tasks_pb2.TaskTemplate()
        template.ParseFromString(path.read_bytes())
        found[path.stem] = template
    return found


def start_flytekit_server(pyflyte_bin: Path, logs_dir: Path, modules: List[str],
                          name: str = "pyflyte-serve-connector") -> Server:
    port, prometheus_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    argv = [pyflyte_bin, "serve", "connector", "--port", port, "--prometheus_port", prometheus_port, "--worker", 4]
    for module in modules:
        argv += ["--modules", module]
    pythonpath = os.pathsep.join(p for p in [str(CONNECTORS_DIR), os.environ.get("PYTHONPATH", "")] if p)
    proc = ManagedProcess(name, argv, logs_dir / f"{name}-{port}.log", cwd=CONNECTORS_DIR,
                          env=child_env({"PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"}))
    try:
        wait_until_serving(proc, address, timeout=90)  # importing flytekit takes a few seconds on 2 cores
    except Exception:
        proc.stop()
        raise
    return Server("flytekit", address, proc)


# --------------------------------------------------------------------------------------------------------------
# flyteidl message builders (shaped like what FlytePropeller sends)
# --------------------------------------------------------------------------------------------------------------

PROJECT, DOMAIN = "flytesnacks", "development"


def serialize_flytekit_task(task) -> tasks_pb2.TaskTemplate:
    """The TaskTemplate flytekit's `pyflyte register` makes of `task` (project flytesnacks, domain development)."""
    from collections import OrderedDict

    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    settings = SerializationSettings(
        image_config=ImageConfig.auto_default_image(), project="flytesnacks", domain="development", version="v1",
    )
    return get_serializable(OrderedDict(), settings, task).template.to_flyte_idl()


def simple_type(kind: str) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(simple=getattr(types_pb2.SimpleType, kind))


def variable_map(types: Dict[str, types_pb2.LiteralType]) -> interface_pb2.VariableMap:
    return interface_pb2.VariableMap(
        variables={name: interface_pb2.Variable(type=t, description=name) for name, t in types.items()}
    )


def task_template(task_type: str, inputs: Dict[str, types_pb2.LiteralType] | None = None,
                  outputs: Dict[str, types_pb2.LiteralType] | None = None, name: Optional[str] = None,
                  version: int = 0) -> tasks_pb2.TaskTemplate:
    return tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(
            resource_type=identifier_pb2.TASK, project=PROJECT, domain=DOMAIN,
            name=name or f"tern.interop.{task_type}", version="v1",
        ),
        type=task_type,
        task_type_version=version,
        metadata=tasks_pb2.TaskMetadata(
            runtime=tasks_pb2.RuntimeMetadata(type=tasks_pb2.RuntimeMetadata.FLYTE_SDK, version="1.16.31",
                                              flavor="python"),
            timeout=duration_pb2.Duration(seconds=600),
        ),
        interface=interface_pb2.TypedInterface(inputs=variable_map(inputs or {}), outputs=variable_map(outputs or {})),
    )


def task_execution_id(task_id: identifier_pb2.Identifier, execution_name: Optional[str] = None,
                      node_id: str = "n0", retry_attempt: int = 0) -> identifier_pb2.TaskExecutionIdentifier:
    return identifier_pb2.TaskExecutionIdentifier(
        task_id=task_id,
        node_execution_id=identifier_pb2.NodeExecutionIdentifier(
            node_id=node_id,
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                project=PROJECT, domain=DOMAIN, name=execution_name or ("a" + uuid.uuid4().hex[:19]),
            ),
        ),
        retry_attempt=retry_attempt,
    )


def propeller_metadata(template: tasks_pb2.TaskTemplate, execution_name: Optional[str] = None,
                       node_id: str = "n0", retry_attempt: int = 0) -> admin.TaskExecutionMetadata:
    """TaskExecutionMetadata as propeller fills it (fields 1-6 and 11; 7-10 are never set by propeller)."""
    te_id = task_execution_id(template.id, execution_name, node_id, retry_attempt)
    return admin.TaskExecutionMetadata(
        task_execution_id=te_id,
        namespace=f"{PROJECT}-{DOMAIN}",
        labels={"execution-id": te_id.node_execution_id.execution_id.name, "workflow-name": "tern-interop"},
        annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        k8s_service_account="default",
        environment_variables={"FLYTE_INTERNAL_EXECUTION_ID": te_id.node_execution_id.execution_id.name},
    )


def output_prefix(meta: admin.TaskExecutionMetadata) -> str:
    ex = meta.task_execution_id.node_execution_id
    return f"s3://tern-interop/metadata/{ex.execution_id.name}/{ex.node_id}/data/{meta.task_execution_id.retry_attempt}"


def create_request(template: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap,
                   meta: Optional[admin.TaskExecutionMetadata] = None) -> admin.CreateTaskRequest:
    meta = meta or propeller_metadata(template)
    return admin.CreateTaskRequest(inputs=inputs, template=template, output_prefix=output_prefix(meta),
                                   task_execution_metadata=meta)


def get_request(task_type: str, resource_meta: bytes, prefix: str = "", version: int = 0) -> admin.GetTaskRequest:
    # propeller still sends the deprecated task_type besides task_category
    return admin.GetTaskRequest(task_type=task_type, resource_meta=resource_meta,
                                task_category=admin.TaskCategory(name=task_type, version=version),
                                output_prefix=prefix)


def delete_request(task_type: str, resource_meta: bytes, version: int = 0) -> admin.DeleteTaskRequest:
    return admin.DeleteTaskRequest(task_type=task_type, resource_meta=resource_meta,
                                   task_category=admin.TaskCategory(name=task_type, version=version))


def lit_int(v: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=v)))


def lit_float(v: float) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(float_value=v)))


def lit_str(v: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=v)))


def lit_duration(seconds: float) -> literals_pb2.Literal:
    d = duration_pb2.Duration()
    d.FromTimedelta(datetime.timedelta(seconds=seconds))
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(duration=d)))


def literal_map(**literals: literals_pb2.Literal) -> literals_pb2.LiteralMap:
    return literals_pb2.LiteralMap(literals=literals)


def python_inputs_to_literal_map(values: Dict[str, object], types: Dict[str, type]) -> literals_pb2.LiteralMap:
    """Literals exactly as flytekit's TypeEngine makes them for a task call."""
    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine

    ctx = FlyteContextManager.current_context()
    return TypeEngine.dict_to_literal_map(ctx, values, type_hints=types).to_flyte_idl()


def literal_to_python(literal: literals_pb2.Literal, python_type: type) -> object:
    """Decode one output literal with flytekit's TypeEngine (what a downstream flytekit task would see)."""
    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.literals import Literal

    ctx = FlyteContextManager.current_context()
    return TypeEngine.to_python_value(ctx, Literal.from_flyte_idl(literal), python_type)


def phase_name(phase: int) -> str:
    from flyteidl.core.execution_pb2 import TaskExecution

    return TaskExecution.Phase.Name(phase)


def poll_until(fn, predicate, timeout: float, interval: float = 0.1):
    """Call fn() until predicate(result) holds; returns the last result (callers assert on it)."""
    deadline = time.monotonic() + timeout
    result = fn()
    while not predicate(result) and time.monotonic() < deadline:
        time.sleep(interval)
        result = fn()
    return result


def run_command(argv: Iterable[object], timeout: float = 120.0, cwd: Optional[Path] = None,
                env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run a short-lived command in its own process group; kill the group if it overruns."""
    argv = [str(a) for a in argv]
    proc = subprocess.Popen(argv, cwd=str(cwd) if cwd else None, env=env if env is not None else child_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        raise AssertionError(f"command timed out after {timeout}s: {' '.join(argv)}\nstdout:\n{out}\nstderr:\n{err}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def explain(result: subprocess.CompletedProcess) -> str:
    return f"$ {' '.join(result.args)}\nexit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def wait_terminal(stub, task_type: str, meta: bytes, prefix: str, timeout: float = 240):
    """GetTask until the task is terminal; the last Resource."""
    return poll_until(lambda: stub.GetTask(get_request(task_type, meta, prefix), timeout=30).resource,
                      lambda r: phase_name(r.phase) in ("SUCCEEDED", "FAILED", "RETRYABLE_FAILED", "ABORTED"),
                      timeout=timeout, interval=0.5)
