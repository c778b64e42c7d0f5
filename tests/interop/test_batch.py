"""The AWS Batch agent as FlytePropeller sees it: real flytekitplugins-awsbatch 1.16.31 tasks serialized with
flytekit, sent through flyteidl's stubs to `tern serve`, submitted to moto 5.2.5's Batch (docker-less: it executes
nothing) through tests/interop/peers/moto_batch_peer.py, with the task's data in moto's S3.

Jobs are counted at moto; as moto runs no container, the test writes outputs.pb where flytekit's entrypoint would
(`--output-prefix {{.outputPrefix}}/0`) and checks the agent returns it. Peer: moto from this virtualenv.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest
from flyteidl.core import literals_pb2
from flyteidl.service import agent_pb2_grpc
from flytekit import task
from flytekitplugins.awsbatch import AWSBatchConfig

from tern_interop import (
    HERE,
    ManagedProcess,
    child_env,
    create_request,
    delete_request,
    free_port,
    get_request,
    lit_int,
    literal_map,
    missing_peer,
    phase_name,
    poll_until,
    propeller_metadata,
    serialize_flytekit_task,
    TernServers,
)

QUEUE = "tern-q"
BUCKET = "tern-batch"
SECRET = "tern-interop-secret-access-key"


@task(task_config=AWSBatchConfig(parameters={"codec": "mp4"}, platformCapabilities="EC2", tags={"team": "tern"}),
      retries=2, timeout=timedelta(minutes=10))
def double(x: int) -> int:
    return 2 * x


@task(task_config=AWSBatchConfig(), environment={"TERN_MOTO_STATE": "RUNNING"})
def long_job(x: int) -> int:
    return x


class Moto:
    def __init__(self, logs_dir: Path, workdir: Path):
        try:
            import boto3  # noqa: F401  (moto's own dependency)
            import moto  # noqa: F401
        except ImportError:
            missing_peer("moto[server]==5.2.5 in this virtualenv (tests/interop/requirements.txt)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ready = workdir / "ready"
        self.process = ManagedProcess(
            "moto-batch", [sys.executable, HERE / "peers" / "moto_batch_peer.py", "--port", str(self.port), "--setup", QUEUE],
            logs_dir / f"moto-batch-{self.port}.log", env=child_env({"TERN_MOTO_READY_FILE": str(ready)}))
        poll_until(lambda: ready.exists() or not self.process.alive(), lambda ok: ok, timeout=60, interval=0.1)
        assert self.process.alive(), self.process.log_text()

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def jobs(self) -> list:
        out = self.client("batch").list_jobs(jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": ["*"]}])
        return [j for j in out["jobSummaryList"] if ":" not in j["jobId"]]

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="module")
def moto_peer(logs_dir, tmp_path_factory):
    m = Moto(logs_dir, tmp_path_factory.mktemp("moto"))
    yield m
    m.stop()


@pytest.fixture
def tern(tern_bin, logs_dir, tmp_path, moto_peer, monkeypatch):
    # The data store's S3 credentials come from the AWS default chain (here: the environment); the agent's
    # from its section, by reference.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    config = tmp_path / "tern.toml"
    config.write_text(f"""
[agents.batch]
region = "us-east-1"
endpoint_url = "{moto_peer.url}"
access_key_id = "env:AWS_ACCESS_KEY_ID"
secret_access_key = "env:AWS_SECRET_ACCESS_KEY"
job_queue = "{QUEUE}"

[data_store]
root = "{tmp_path / 'data'}"
s3_endpoint_url = "{moto_peer.url}"
s3_region = "us-east-1"
s3_force_path_style = true
""")
    servers = TernServers(tern_bin, logs_dir, config, "tern-serve-batch")
    yield servers.start
    servers.stop_all()


def rendered(t, execution: str):
    """Propeller's part: the container args' template variables rendered to S3 prefixes in moto."""
    template = serialize_flytekit_task(t)
    meta = propeller_metadata(template, execution_name=execution)
    prefix = f"s3://{BUCKET}/metadata/{execution}/n0/data/0"
    values = {
        "{{.input}}": f"s3://{BUCKET}/metadata/{execution}/n0/data/inputs.pb",
        "{{.outputPrefix}}": prefix,
        "{{.rawOutputDataPrefix}}": f"s3://{BUCKET}/raw/{execution}",
        "{{.checkpointOutputPrefix}}": f"{prefix}/checkpoint",
        "{{.prevCheckpointPrefix}}": "",
    }
    args = []
    for a in template.container.args:
        for k, v in values.items():
            a = a.replace(k, v)
        args.append(a)
    del template.container.args[:]
    template.container.args.extend(args)
    return template, meta, prefix


def request(template, meta, prefix, inputs):
    r = create_request(template, inputs, meta)
    r.output_prefix = prefix
    return r


def test_templates_are_flytekits():
    t = serialize_flytekit_task(double)
    assert t.type == "aws-batch"
    from google.protobuf.json_format import MessageToDict

    custom = MessageToDict(t.custom)
    assert custom["parameters"] == {"codec": "mp4"} and custom["platformCapabilities"] == "EC2", custom
    assert dict(t.config)["platformCapabilities"] == "EC2"
    args = list(t.container.args)
    assert args[:5] == ["pyflyte-execute", "--inputs", "{{.input}}", "--output-prefix", "{{.outputPrefix}}/0"], args
    assert t.metadata.retries.retries == 2 and t.metadata.timeout.seconds == 600


def test_one_job_per_attempt_across_tern_restarts_and_outputs_from_s3(tern, moto_peer):
    template, meta, prefix = rendered(double, "batchrestart1")
    inputs = literal_map(x=lit_int(21))
    before = len(moto_peer.jobs())
    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    first = stub.CreateTask(request(template, meta, prefix, inputs), timeout=60).resource_meta
    again = stub.CreateTask(request(template, meta, prefix, inputs), timeout=60).resource_meta
    server.process.stop()
    server = tern()  # a restarted gateway: nothing of the first in memory
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    third = stub.CreateTask(request(template, meta, prefix, inputs), timeout=60).resource_meta
    jobs = moto_peer.jobs()
    assert len(jobs) == before + 1, jobs
    assert SECRET.encode() not in first + again + third

    # The inputs are where the container reads them (the rendered --inputs), written by the agent.
    s3 = moto_peer.client("s3")
    body = s3.get_object(Bucket=BUCKET, Key=f"metadata/batchrestart1/n0/data/inputs.pb")["Body"].read()
    assert literals_pb2.LiteralMap.FromString(body) == inputs

    # moto executed nothing: write outputs.pb where pyflyte-execute --output-prefix <prefix>/0 writes it.
    s3.put_object(Bucket=BUCKET, Key="metadata/batchrestart1/n0/data/0/0/outputs.pb",
                  Body=literal_map(o0=lit_int(42)).SerializeToString())
    resource = poll_until(lambda: stub.GetTask(get_request("aws-batch", third, prefix), timeout=30).resource,
                          lambda r: phase_name(r.phase) in ("SUCCEEDED", "FAILED", "RETRYABLE_FAILED", "ABORTED"),
                          timeout=60, interval=0.3)
    assert phase_name(resource.phase) == "SUCCEEDED", resource
    assert resource.outputs.literals["o0"].scalar.primitive.integer == 42
    assert any(link.name == "AWS Batch Console" for link in resource.log_links)

    # What propeller's plugin would submit: retries and timeout from the task, flytekit's parameters and tags.
    detail = moto_peer.client("batch").describe_jobs(jobs=[jobs[-1]["jobId"]])["jobs"][0]
    assert detail["timeout"]["attemptDurationSeconds"] == 600
    assert detail["parameters"]["codec"] == "mp4"
    assert detail["tags"]["team"] == "tern" and "tern:idempotency-key" in detail["tags"]


def test_delete_terminates_the_job(tern, moto_peer):
    template, meta, prefix = rendered(long_job, "batchdelete1")
    server = tern()
    stub = agent_pb2_grpc.AsyncAgentServiceStub(server.channel())
    handle = stub.CreateTask(request(template, meta, prefix, literal_map(x=lit_int(1))), timeout=60).resource_meta
    assert phase_name(stub.GetTask(get_request("aws-batch", handle, prefix), timeout=30).resource.phase) == "RUNNING"
    stub.DeleteTask(delete_request("aws-batch", handle), timeout=30)
    stub.DeleteTask(delete_request("aws-batch", handle), timeout=30)
    resource = stub.GetTask(get_request("aws-batch", handle, prefix), timeout=30).resource
    assert phase_name(resource.phase) == "ABORTED", resource
