"""The `snowflake` agent, driven as FlytePropeller drives flytekit's Snowflake connector.

TaskTemplates are serialized by the real flytekitplugins-snowflake 1.16.31 (`SnowflakeTask`), sent through
flyteidl's own stubs (CreateTask / GetTask / DeleteTask) to `tern serve`, which talks to the Snowflake emulator:
fakesnow 0.12.1 behind the test-side shim tests/interop/peers/fakesnow_shim.py (its own virtualenv,
$TERN_FAKESNOW_PYTHON; scripts/test.sh installs it). Submissions are counted AT the emulator.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import OrderedDict
from pathlib import Path

import pytest
from flyteidl.admin import agent_pb2 as admin
from flyteidl.core import execution_pb2
from flyteidl.service import agent_pb2_grpc

from tern_interop import (
    REPO,
    ManagedProcess,
    child_env,
    explain,
    free_port,
    missing_peer,
    phase_name,
    propeller_metadata,
    python_inputs_to_literal_map,
    run_command,
    start_tern_server,
)

import os

SHIM = REPO / "tests" / "interop" / "peers" / "fakesnow_shim.py"
ACCOUNT, USER = "myorg-myaccount", "TESTER"


# flytekit tasks at module level (flytekit refuses nested task definitions outside test modules' top level).
def _tasks():
    from flytekit import StructuredDataset, kwtypes
    from flytekitplugins.snowflake import SnowflakeConfig, SnowflakeTask

    config = SnowflakeConfig(user=USER, account=ACCOUNT, database="DB", schema="S", warehouse="WH")
    by_region = SnowflakeTask(
        name="tern.interop.snowflake.by_region",
        query_template="""SELECT ID, REGION, AMOUNT
                          FROM ORDERS
                          WHERE REGION = %(region)s AND ID >= %(min_id)s
                          ORDER BY ID""",
        inputs=kwtypes(region=str, min_id=int),
        task_config=config,
        output_schema_type=StructuredDataset,
    )
    bad = SnowflakeTask(name="tern.interop.snowflake.bad", query_template="SELECT NOPE FROM ORDERS", task_config=config)
    return by_region, bad


def serialize(task):
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    settings = SerializationSettings(image_config=ImageConfig.auto_default_image(), project="flytesnacks",
                                     domain="development", version="v1")
    return get_serializable(OrderedDict(), settings, task).template.to_flyte_idl()


class Emulator:
    def __init__(self, url: str, proc: ManagedProcess):
        self.url, self.proc = url, proc

    def call(self, method: str, path: str, body=None, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f'Snowflake Token="{token}"'
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def sql(self, *statements: str) -> None:
        token = self.call("POST", "/session/v1/login-request", {"data": {"SESSION_PARAMETERS": {}}})["data"]["token"]
        for s in statements:
            answer = self.call("POST", "/queries/v1/query-request", {"sqlText": s, "sequenceId": 1}, token)
            assert answer["success"], (s, answer)
        self.call("POST", "/tern-test/reset", {})

    def submissions(self, sql: str):
        return [r for r in self.call("GET", "/tern-test/requests")["requests"]
                if r["kind"] == "query" and r["async"] and r["sql"] == sql]


@pytest.fixture
def emulator(logs_dir):
    python = os.environ.get("TERN_FAKESNOW_PYTHON") or (os.environ.get("TERN_VENV", "") + "-fakesnow/bin/python")
    if not Path(python).is_file():
        missing_peer(f"the Snowflake emulator's python ({python}); scripts/test.sh installs it (TERN_FAKESNOW_PYTHON)")
    port = free_port()
    proc = ManagedProcess("fakesnow", [python, SHIM, "--host", "127.0.0.1", "--port", str(port)],
                          logs_dir / f"fakesnow-{port}.log", env=child_env())
    emu = Emulator(f"http://127.0.0.1:{port}", proc)
    deadline = time.monotonic() + 60
    while True:
        try:
            emu.call("GET", "/tern-test/requests")
            break
        except Exception:
            if time.monotonic() > deadline:
                proc.stop()
                raise AssertionError(f"the emulator did not answer within 60 s; log: {proc.log_path}")
            time.sleep(0.1)
    emu.sql("CREATE DATABASE DB", "CREATE SCHEMA DB.S", "CREATE TABLE DB.S.ORDERS (ID INT, REGION TEXT, AMOUNT NUMBER(10,2))",
            "INSERT INTO DB.S.ORDERS VALUES (1, 'north', 10.5), (2, 'south', 20.25), (3, 'north', 15), (4, 'east', 2)")
    yield emu
    proc.stop()


def tern_config(tmp_path: Path, emu: Emulator) -> Path:
    (tmp_path / "pw").write_text("not-a-real-password\n")
    config = tmp_path / "tern.toml"
    config.write_text(f"""
[data_store]
root = "{tmp_path / 'data'}"

[agents.snowflake]
endpoint = "{emu.url}"
password = "file:{tmp_path / 'pw'}"
history_lookup = false   # fakesnow has no QUERY_HISTORY; the submission record covers restarts
""")
    return config


def serve(tern_bin, logs_dir, config, name):
    return start_tern_server(tern_bin, logs_dir, ["--config", str(config)], name=name)


def create(channel, template, inputs, meta, prefix):
    req = admin.CreateTaskRequest(inputs=inputs, template=template, output_prefix=prefix, task_execution_metadata=meta)
    return agent_pb2_grpc.AsyncAgentServiceStub(channel).CreateTask(req, timeout=30).resource_meta


def poll(channel, resource_meta, prefix, timeout=30.0) -> admin.Resource:
    stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        res = stub.GetTask(admin.GetTaskRequest(task_type="snowflake", resource_meta=resource_meta,
                                                task_category=admin.TaskCategory(name="snowflake", version=0),
                                                output_prefix=prefix), timeout=30).resource
        if res.phase in (execution_pb2.TaskExecution.SUCCEEDED, execution_pb2.TaskExecution.FAILED,
                         execution_pb2.TaskExecution.RETRYABLE_FAILED, execution_pb2.TaskExecution.ABORTED):
            return res
        assert time.monotonic() < deadline, f"still {phase_name(res.phase)} after {timeout} s"
        time.sleep(0.1)


def test_flytekit_template_conventions():
    """What flytekitplugins-snowflake writes, and so what the agent reads (template.rs)."""
    by_region, _ = _tasks()
    t = serialize(by_region)
    assert (t.type, t.task_type_version) == ("snowflake", 0)
    assert dict(t.config) == {"user": USER, "account": ACCOUNT, "database": "DB", "schema": "S", "warehouse": "WH"}
    assert not t.HasField("custom")
    assert t.sql.statement.startswith("SELECT ID, REGION, AMOUNT FROM ORDERS WHERE REGION = %(region)s")
    assert set(t.interface.outputs.variables) == {"results"}


def test_flytekit_tasks_through_tern_serve_idempotent_across_restarts(tern_bin, logs_dir, tmp_path, emulator):
    import grpc
    from flytekit import FlyteContextManager, StructuredDataset
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.types import LiteralType, StructuredDatasetType

    by_region, bad = _tasks()
    template = serialize(by_region)
    inputs = python_inputs_to_literal_map({"region": "north", "min_id": 2}, {"region": str, "min_id": int})
    meta = propeller_metadata(template)
    prefix = str(tmp_path / "data" / "metadata" / meta.task_execution_id.node_execution_id.execution_id.name / "n0" / "0")
    config = tern_config(tmp_path, emulator)
    sql = "SELECT ID, REGION, AMOUNT FROM ORDERS WHERE REGION = :1 AND ID >= :2 ORDER BY ID"

    server = serve(tern_bin, logs_dir, config, "tern-snowflake-1")
    try:
        with grpc.insecure_channel(server.address) as channel:
            first = create(channel, template, inputs, meta, prefix)
            again = create(channel, template, inputs, meta, prefix)
            assert again == first, "a repeated CreateTask returns the first query's handle"
            # tern serve seals the agent's handle in its routing envelope ("meta").
            handle = json.loads(first)["meta"]
            for field in ("user", "account", "database", "schema", "warehouse", "query_id", "has_output"):
                assert field in handle, f"flytekit's SnowflakeJobMetadata field {field} missing from {handle}"
            assert "not-a-real-password" not in first.decode()

            res = poll(channel, first, prefix)
            assert phase_name(res.phase) == "SUCCEEDED", res.message
            # flytekit's connector output, built by flytekit itself, is what Tern returned.
            uri = f"snowflake://{USER}:{ACCOUNT}/WH/DB/S/{handle['query_id']}"
            expected = TypeEngine.to_literal(FlyteContextManager.current_context(), StructuredDataset(uri=uri),
                                             StructuredDataset, LiteralType(structured_dataset_type=StructuredDatasetType(format="")))
            assert res.outputs.literals["results"] == expected.to_flyte_idl()
            assert res.log_links[0].name == "Snowflake Query Details"
            assert res.log_links[0].uri.endswith(f"/queries/{handle['query_id']}/detail")

            # DeleteTask on a finished query: OK, twice, and the task stays SUCCEEDED.
            stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
            for _ in range(2):
                stub.DeleteTask(admin.DeleteTaskRequest(task_type="snowflake", resource_meta=first,
                                                        task_category=admin.TaskCategory(name="snowflake")), timeout=30)
            assert phase_name(poll(channel, first, prefix).phase) == "SUCCEEDED"

            # Bad SQL: FAILED (permanent), Snowflake's code in the message.
            bad_t = serialize(bad)
            bad_meta = propeller_metadata(bad_t)
            bad_prefix = str(tmp_path / "data" / "bad")
            res = poll(channel, create(channel, bad_t, python_inputs_to_literal_map({}, {}), bad_meta, bad_prefix), bad_prefix)
            assert phase_name(res.phase) == "FAILED", res.message
            assert "Snowflake error" in res.message and "NOPE" in res.message, res.message
            assert res.agent_error.code == "TERN-F003"
    finally:
        server.process.stop()

    # A new gateway process (propeller re-issues CreateTask after a crash): the same query, not a second one.
    server = serve(tern_bin, logs_dir, config, "tern-snowflake-2")
    try:
        with grpc.insecure_channel(server.address) as channel:
            after = create(channel, template, inputs, meta, prefix)
            assert json.loads(after)["meta"]["query_id"] == handle["query_id"]
            assert phase_name(poll(channel, after, prefix).phase) == "SUCCEEDED"
    finally:
        server.process.stop()
    subs = emulator.submissions(sql)
    assert len(subs) == 1, f"expected exactly one query at the emulator for one task attempt, got {subs}"
    assert subs[0]["bindings"] == {"1": {"type": "TEXT", "value": "north"}, "2": {"type": "FIXED", "value": "2"}}
    assert subs[0]["parameters"]["QUERY_TAG"].startswith("tern:")


def test_example_workflow_snowflake_then_duckdb(tern_bin, tmp_path, emulator):
    """examples/warehouse/snowflake.yaml with snowflake.toml, as README.md runs it against the emulator."""
    emulator.sql("CREATE DATABASE DEMO", "CREATE SCHEMA DEMO.SALES",
                 "CREATE TABLE DEMO.SALES.ORDERS (ID INT, REGION TEXT, AMOUNT NUMBER(10,2))",
                 "INSERT INTO DEMO.SALES.ORDERS VALUES (1,'north',10.5),(2,'south',20.25),(3,'north',15),(4,'east',2)")
    example = REPO / "examples" / "warehouse"
    env = {"SNOWFLAKE_PASSWORD": "anything", "TERN_AGENTS__SNOWFLAKE__ENDPOINT": emulator.url,
           "TERN_AGENTS__SNOWFLAKE__HISTORY_LOOKUP": "false"}
    result = run_command([tern_bin, "run", example / "snowflake.yaml", "--config", example / "snowflake.toml",
                          "--state-dir", tmp_path / "state", "--input", "min_amount=5", "--json"],
                         cwd=tmp_path, timeout=120, env=child_env(env))
    assert result.returncode == 0, explain(result)
    summary = json.loads(result.stdout)
    assert summary["phase"] == "SUCCEEDED", summary
    outputs = summary["outputs"]
    assert (outputs["region"], outputs["revenue"], outputs["orders"]) == ("north", 25.5, 2), outputs
