"""The BigQuery agent as FlytePropeller and `tern run` use it, against the BigQuery emulator (crucible-emulator,
tests/interop/peers/crucible_bigquery.py):

- task templates serialized by the real flytekitplugins-bigquery 1.16.31 (in its own virtualenv,
  $TERN_BQ_PLUGIN_PYTHON) go through flyteidl's stubs to `tern serve` (CreateTask/GetTask/DeleteTask);
- the same templates go to flytekit's own BigQuery connector (`pyflyte serve connector`, same emulator): BigQuery
  receives the same query and parameters from both, and both answer the same output literal;
- one job per task_execution_id, counted at the emulator (jobs.list), across a restart of `tern serve`
  (flytekit's connector starts a job per call);
- DeleteTask cancels the job;
- examples/warehouse/bigquery.yaml (BigQuery -> DuckDB) runs with `tern run`.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import agent_pb2 as admin
from flyteidl.core import tasks_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc

from tern_interop import (
    HERE,
    REPO,
    ManagedProcess,
    Server,
    child_env,
    create_request,
    delete_request,
    explain,
    free_port,
    get_request,
    missing_peer,
    propeller_metadata,
    python_inputs_to_literal_map,
    run_command,
    start_tern_server,
    wait_until_serving,
)

PEERS = HERE / "peers"
TASK_TYPE = "bigquery_query_job_task"
PROJECT = "tern-interop"  # the plugin templates' ProjectID (peers/bigquery_templates.py)
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.RETRYABLE_FAILED, TaskExecution.ABORTED}


def _python(var: str, what: str) -> Path:
    raw = os.environ.get(var)
    if not raw or not Path(raw).is_file():
        missing_peer(f"{what} ({var}={raw!r} is not a file); scripts/test.sh installs it and exports {var}")
    return Path(raw)


class Emulator:
    def __init__(self, python: Path, logs_dir: Path):
        self.process = ManagedProcess("crucible-bigquery", [python, PEERS / "crucible_bigquery.py", "--port", "0"],
                                      logs_dir / f"crucible-bigquery-{time.time_ns()}.log", env=child_env())
        deadline = time.monotonic() + 60
        while True:
            found = re.search(r"^PORT (\d+)$", self.process.log_text(), re.M)
            if found:
                self.port = int(found.group(1))
                break
            if not self.process.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the BigQuery emulator did not start\n{self.process.describe()}")
            time.sleep(0.1)
        self.root = f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body: object = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.root + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def jobs(self, project: str = PROJECT) -> list:
        return self.call("GET", f"/bigquery/v2/projects/{project}/jobs").get("jobs", [])

    def job(self, job_id: str, project: str = PROJECT) -> dict:
        return self.call("GET", f"/bigquery/v2/projects/{project}/jobs/{job_id}")

    def results(self, job_id: str, project: str = PROJECT) -> dict:
        return self.call("GET", f"/bigquery/v2/projects/{project}/queries/{job_id}")


@pytest.fixture(scope="module")
def emulator(logs_dir):
    e = Emulator(_python("TERN_CRUCIBLE_PYTHON", "the BigQuery emulator (crucible-emulator)"), logs_dir)
    yield e
    e.process.stop()


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict:
    python = _python("TERN_BQ_PLUGIN_PYTHON", "flytekitplugins-bigquery's virtualenv")
    out = tmp_path_factory.mktemp("bigquery-templates")
    result = run_command([python, PEERS / "bigquery_templates.py", out], timeout=180)
    assert result.returncode == 0, explain(result)
    found = {}
    for path in out.glob("*.pb"):
        t = tasks_pb2.TaskTemplate()
        t.ParseFromString(path.read_bytes())
        found[path.stem] = t
    return found


def bigquery_toml(tmp: Path, emulator: Emulator) -> Path:
    path = tmp / "tern-bigquery.toml"
    path.write_text(f'[agents.bigquery]\nendpoint = "{emulator.root}"\nauth = "anonymous"\n')
    return path


@pytest.fixture(scope="module")
def tern_bq(tern_bin, logs_dir, emulator, tmp_path_factory):
    config = bigquery_toml(tmp_path_factory.mktemp("tern-bq"), emulator)
    server = start_tern_server(tern_bin, logs_dir, ["--config", config], name="tern-serve-bigquery")
    yield server
    server.process.stop()


@pytest.fixture(scope="module")
def flytekit_bq(logs_dir, emulator):
    python = _python("TERN_BQ_PLUGIN_PYTHON", "flytekitplugins-bigquery's virtualenv")
    port, prometheus = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    proc = ManagedProcess(
        "pyflyte-bigquery", [python.parent / "pyflyte", "serve", "connector", "--port", port, "--prometheus_port",
                             prometheus, "--modules", "bigquery_flytekit_connector"],
        logs_dir / f"pyflyte-bigquery-{port}.log", cwd=PEERS,
        env=child_env({"PYTHONPATH": str(PEERS), "PYTHONUNBUFFERED": "1", "BIGQUERY_EMULATOR_HOST": emulator.root,
                       "GOOGLE_CLOUD_PROJECT": PROJECT}))
    try:
        wait_until_serving(proc, address, timeout=120)
    except Exception:
        proc.stop()
        raise
    yield Server("flytekit", address, proc)
    proc.stop()


def stub(server: Server):
    channel = grpc.insecure_channel(server.address)
    return channel, agent_pb2_grpc.AsyncAgentServiceStub(channel)


def typed_inputs():
    values = {"i": 41, "f": 1.5, "s": "it's; DROP TABLE x", "b": True,
              "d": datetime.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=datetime.timezone.utc)}
    types = {"i": int, "f": float, "s": str, "b": bool, "d": datetime.datetime}
    return python_inputs_to_literal_map(values, types)


def run_task(agent, template, inputs=None, meta=None, timeout=60.0):
    """CreateTask, then GetTask until a terminal phase, as propeller does. Returns (resource_meta, resource)."""
    from flyteidl.core import literals_pb2

    meta = meta or propeller_metadata(template)
    created = agent.CreateTask(create_request(template, inputs or literals_pb2.LiteralMap(), meta), timeout=30)
    deadline = time.monotonic() + timeout
    while True:
        res = agent.GetTask(get_request(TASK_TYPE, created.resource_meta), timeout=30).resource
        if res.phase in TERMINAL or time.monotonic() > deadline:
            return created.resource_meta, res
        time.sleep(0.1)


def agent_handle(resource_meta: bytes) -> dict:
    """The agent's own handle: flytekit's is the resource_meta; `tern serve` seals the agent's inside its
    routing envelope (owner, scope)."""
    handle = json.loads(resource_meta)
    while "job_id" not in handle:
        handle = next(v for v in handle.values() if isinstance(v, dict) and ("job_id" in v or "v" in v))
    return handle


def job_id(resource_meta: bytes) -> str:
    return agent_handle(resource_meta)["job_id"]


def test_flytekit_serialized_tasks_run_on_tern_like_propeller(tern_bq, templates, emulator):
    channel, agent = stub(tern_bq)
    with channel:
        meta, res = run_task(agent, templates["typed_params"], typed_inputs())
        assert res.phase == TaskExecution.SUCCEEDED, res
        handle = agent_handle(meta)
        assert handle["project"] == PROJECT and handle["location"] == "US" and handle["v"] == 1, handle
        uri = res.outputs.literals["results"].scalar.structured_dataset.uri
        assert re.fullmatch(r"bq://tern-interop:_crucible_anonymous\.anon[0-9a-f]+", uri), uri
        link = res.log_links[0]
        assert link.name == "BigQuery Console", link
        assert link.uri == (f"https://console.cloud.google.com/bigquery?project={PROJECT}"
                            f"&j=bq:US:{handle['job_id']}&page=queryresults"), link
        row = [c["v"] for c in emulator.results(handle["job_id"])["rows"][0]["f"]]
        assert row == ["42", "3.0", "it's; DROP TABLE x", "false", "2024-05-01T12:30:15.123456"], row

        _, res = run_task(agent, templates["no_output"])
        assert res.phase == TaskExecution.SUCCEEDED and not res.outputs.literals, res

        _, res = run_task(agent, templates["bad_sql"])
        assert res.phase == TaskExecution.FAILED and res.agent_error.code == "TERN-J003", res
        assert "invalidQuery" in res.message, res.message

        _, res = run_task(agent, templates["missing_table"])
        assert res.phase == TaskExecution.FAILED and res.agent_error.code == "TERN-J004", res
        assert "tern_interop_nowhere" in res.message, res.message


def normalized_parameters(job: dict) -> list:
    """queryParameters with every value as text (google-cloud-bigquery sends FLOAT64 as a JSON number, Tern as
    the REST reference's string)."""
    def norm(v):
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v if isinstance(v, str) else json.dumps(v)
    return sorted((norm(p) for p in job["configuration"]["query"]["queryParameters"]), key=lambda p: p["name"])


def test_bigquery_receives_what_flytekits_connector_sends_and_outputs_match(tern_bq, flytekit_bq, templates, emulator):
    tern_channel, tern = stub(tern_bq)
    fk_channel, flytekit = stub(flytekit_bq)
    with tern_channel, fk_channel:
        t_meta, t_res = run_task(tern, templates["typed_params"], typed_inputs())
        f_meta, f_res = run_task(flytekit, templates["typed_params"], typed_inputs())
        assert f_res.phase == TaskExecution.SUCCEEDED, f_res
        assert t_res.phase == TaskExecution.SUCCEEDED, t_res
        t_job, f_job = emulator.job(job_id(t_meta)), emulator.job(job_id(f_meta))
        assert t_job["configuration"]["query"]["query"] == f_job["configuration"]["query"]["query"]
        assert t_job["configuration"]["query"]["parameterMode"] == f_job["configuration"]["query"]["parameterMode"]
        assert normalized_parameters(t_job) == normalized_parameters(f_job)
        assert emulator.results(job_id(t_meta))["rows"] == emulator.results(job_id(f_meta))["rows"]
        # The same output literal, up to the (anonymous, per job) table name.
        t_sd = t_res.outputs.literals["results"].scalar.structured_dataset
        f_sd = f_res.outputs.literals["results"].scalar.structured_dataset
        assert t_sd.metadata == f_sd.metadata, (t_sd, f_sd)
        assert t_sd.uri.split(".")[0] == f_sd.uri.split(".")[0], (t_sd.uri, f_sd.uri)
        assert [l.name for l in t_res.log_links] == [l.name for l in f_res.log_links]
        assert agent_handle(f_meta).keys() <= agent_handle(t_meta).keys(), (f_meta, t_meta)

        _, t_bad = run_task(tern, templates["bad_sql"])
        _, f_bad = run_task(flytekit, templates["bad_sql"])
        assert t_bad.phase == f_bad.phase == TaskExecution.FAILED, (t_bad, f_bad)


def test_one_job_per_task_execution_id_counted_at_the_emulator_across_a_restart(tern_bin, logs_dir, emulator,
                                                                                 templates, flytekit_bq, tmp_path):
    template = templates["no_output"]
    meta = propeller_metadata(template)
    config = bigquery_toml(tmp_path, emulator)
    before = len(emulator.jobs())
    first = start_tern_server(tern_bin, logs_dir, ["--config", config], name="tern-serve-bq-idem-1")
    try:
        channel, agent = stub(first)
        with channel:
            a = agent.CreateTask(create_request(template, None, meta), timeout=30).resource_meta
            b = agent.CreateTask(create_request(template, None, meta), timeout=30).resource_meta
    finally:
        first.process.stop()
    second = start_tern_server(tern_bin, logs_dir, ["--config", config], name="tern-serve-bq-idem-2")
    try:
        channel, agent = stub(second)
        with channel:
            c = agent.CreateTask(create_request(template, None, meta), timeout=30).resource_meta
            assert a == b == c
            assert len(emulator.jobs()) == before + 1, "three CreateTask calls, one job at the emulator"
            retry = propeller_metadata(template, meta.task_execution_id.node_execution_id.execution_id.name,
                                       retry_attempt=1)
            agent.CreateTask(create_request(template, None, retry), timeout=30)
            assert len(emulator.jobs()) == before + 2, "a new retry attempt is a new job"
    finally:
        second.process.stop()
    # flytekit's connector, same request twice: two jobs (client-generated random job ids).
    channel, flytekit = stub(flytekit_bq)
    with channel:
        before = len(emulator.jobs())
        flytekit.CreateTask(create_request(template, None, meta), timeout=30)
        flytekit.CreateTask(create_request(template, None, meta), timeout=30)
        assert len(emulator.jobs()) == before + 2


def test_delete_task_cancels_the_running_job_idempotently(tern_bq, templates, emulator):
    channel, agent = stub(tern_bq)
    with channel:
        template = templates["long_running"]
        created = agent.CreateTask(create_request(template, None), timeout=30)
        res = agent.GetTask(get_request(TASK_TYPE, created.resource_meta), timeout=30).resource
        assert res.phase == TaskExecution.RUNNING, res
        cancels = emulator.call("GET", "/_tern/stats")["cancels"]
        agent.DeleteTask(delete_request(TASK_TYPE, created.resource_meta), timeout=30)
        assert emulator.call("GET", "/_tern/stats")["cancels"] == cancels + 1
        res = agent.GetTask(get_request(TASK_TYPE, created.resource_meta), timeout=30).resource
        assert res.phase == TaskExecution.ABORTED, res
        agent.DeleteTask(delete_request(TASK_TYPE, created.resource_meta), timeout=30)
        status = emulator.job(job_id(created.resource_meta))["status"]
        assert status["errorResult"]["reason"] == "stopped", status


def test_warehouse_example_bigquery_to_duckdb_runs_with_tern_run(tern_bin, emulator, tmp_path):
    workflow = REPO / "examples" / "warehouse" / "bigquery.yaml"
    config = bigquery_toml(tmp_path, emulator)
    result = run_command([tern_bin, "run", workflow, "--config", config, "--state-dir", tmp_path / "state", "--json",
                          "--input", "min_amount=10"], cwd=tmp_path, timeout=180)
    assert result.returncode == 0, explain(result)
    out = json.loads(result.stdout)["outputs"]
    assert out["top_region"] == "north" and out["revenue"] == 67.75, out
    orders = Path(out["orders"]) if Path(out["orders"]).is_absolute() else tmp_path / out["orders"]
    assert (orders / "00000").read_bytes()[:4] == b"PAR1", out
    # The README's way: the ecosystem variable and an environment override, no config file.
    env = child_env({"BIGQUERY_EMULATOR_HOST": emulator.root, "TERN_AGENTS__BIGQUERY__AUTH": "anonymous"})
    result = run_command([tern_bin, "run", workflow, "--state-dir", tmp_path / "state2", "--json",
                          "--input", "min_amount=35"], cwd=tmp_path, timeout=180, env=env)
    assert result.returncode == 0, explain(result)
    out = json.loads(result.stdout)["outputs"]
    assert out["top_region"] == "north" and out["revenue"] == 55.25, out


def test_standard_variables_fill_the_bigquery_section(tern_bin, tmp_path):
    env = child_env({"GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/google/key.json",
                     "GOOGLE_CLOUD_PROJECT": "proj-x", "BIGQUERY_EMULATOR_HOST": "http://127.0.0.1:9050"})
    result = run_command([tern_bin, "config", "show", "--json"], cwd=tmp_path, env=env)
    assert result.returncode == 0, explain(result)
    section = json.loads(result.stdout)["agents"]["bigquery"]
    assert section["credentials"] == "file:/var/secrets/google/key.json", section  # a reference, never the key
    assert section["default_project"] == "proj-x" and section["endpoint"] == "http://127.0.0.1:9050", section
    # A key pasted into the config is refused without being echoed.
    config = tmp_path / "bad.toml"
    config.write_text('[agents.bigquery]\ncredentials = "{\\"private_key\\": \\"-----BEGIN PRIVATE KEY----- s3cr3t\\"}"\n')
    result = run_command([tern_bin, "config", "show", "--config", config], cwd=tmp_path)
    assert result.returncode == 2 and "s3cr3t" not in result.stdout + result.stderr, explain(result)
