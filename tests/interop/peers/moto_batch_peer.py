"""moto 5.2.5 (a local AWS emulator) for Tern's AWS Batch tests.

Serves moto's own server (`moto.server.main`: S3, IAM, Batch, CloudWatch Logs, ...) on 127.0.0.1:<port> with
Batch in moto's docker-less mode (`batch.use_docker = false`, set here before serving, as
`POST /moto-api/config {"batch":{"use_docker":false}}` would). In that mode moto executes nothing: every submitted
job is SUCCEEDED at once (local-peers.md §1). Submission, ListJobs, DescribeJobs, job definitions, queues, tags and
S3 are moto's own code, untouched. Three test-only additions, because moto cannot produce most job states itself:

  * a job whose container overrides set the environment variable TERN_MOTO_STATE=NAME is left in state NAME
    instead (`RUNNING`: a job that keeps running until terminated; `FAILED`: a job whose container exited 1);
  * the file named by $TERN_MOTO_DRIVE_FILE, when it holds a NAME, does the same for every job submitted while it
    does (the agent's state-table names: `RUNNABLE`, `FAILED/host`, ..., or any undeclared text);
  * TerminateJob stops a job that is not finished yet: FAILED with the reason given, as AWS Batch does (moto's
    docker-less mode would leave it as it is);

and every job gets three lines in CloudWatch Logs (group /aws/batch/job, its log stream), standing in for what its
container would print.

With --setup QUEUE it also creates, once it serves, what a Batch job needs and moto refuses to run without: the IAM
role `batchrole`, an UNMANAGED compute environment `ce1`, the ENABLED job queue QUEUE, and the S3 bucket
`tern-batch`; then it writes "ready" to $TERN_MOTO_READY_FILE.

Usage: python moto_batch_peer.py --port PORT [--setup QUEUE]
"""

import argparse
import datetime
import os
import threading
import time
import urllib.request

from moto.batch.models import Job
from moto.batch_simple.models import BatchSimpleBackend
from moto.core.config import default_user_config
from moto.server import main as moto_main

# FAILED jobs by the reason AWS Batch gives (the agent names FAILED jobs by it):
# name -> (statusReason, container reason, exit code)
FAILURES = {
    "FAILED": ("Essential container in task exited", None, 1),
    "FAILED/terminated": ("tern: DeleteTask (driven by the test)", None, None),
    "FAILED/timeout": ("Job attempt duration exceeded timeout", None, None),
    "FAILED/host": ("Host EC2 (instance i-0123456789abcdef0) terminated.", None, None),
    "FAILED/start": ("Task failed to start", "CannotStartContainerError: Error response from daemon", None),
    "FAILED/image": ("Task failed to start", "CannotPullContainerError: pull access denied for nope", None),
    "FAILED/memory": ("Essential container in task exited", "OutOfMemoryError: Container killed due to memory usage", 137),
    "FAILED/dependency": ("Dependent Job failed", None, None),
}
KNOWN = {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"}


def _wanted(job):
    for env in (job.container_overrides or {}).get("environment", []) or []:
        if env.get("name") == "TERN_MOTO_STATE" and env.get("value"):
            return env["value"]
    path = os.environ.get("TERN_MOTO_DRIVE_FILE")
    if path and os.path.exists(path):
        with open(path) as f:
            text = f.read().strip()
        return text or None
    return None


def _write_logs(backend, job):
    logs = backend.logs_backend
    group, stream = "/aws/batch/job", job._stream_name
    logs.ensure_log_group(group)
    logs.ensure_log_stream(group, stream)
    now = int(time.time() * 1000)
    command = (job.container_overrides or {}).get("command") or []
    lines = [
        f"tern-moto: job {job.job_name} ({job.job_id}) accepted; moto executes nothing",
        "tern-moto: command " + " ".join(command),
        "tern-moto: done",
    ]
    logs.put_log_events(group, stream, [{"timestamp": now + i, "message": m} for i, m in enumerate(lines)])


_real_finish = BatchSimpleBackend._mark_job_as_finished


def _mark_job_as_finished(self, include_start_attempt, job):
    state = _wanted(job)
    if state is None or state == "SUCCEEDED":
        _real_finish(self, include_start_attempt, job)
        _write_logs(self, job)
        return
    self.backend._jobs[job.job_id] = job
    job._transitions = []  # frozen: moto's state manager would move it on
    job.job_started_at = datetime.datetime.now()
    job.log_stream_name = job._stream_name
    if include_start_attempt:
        job._start_attempt()
    _write_logs(self, job)
    if state in FAILURES:
        reason, container_reason, exit_code = FAILURES[state]
        job._mark_stopped(success=False)
        job.job_stopped_reason = reason
        job.exit_code = exit_code
        job._tern_container_reason = container_reason
    else:
        job.status = state  # a live state, or an undeclared one


BatchSimpleBackend._mark_job_as_finished = _mark_job_as_finished

_real_describe_short = Job.describe_short


def _describe_short(self):
    status = self._status
    if status in KNOWN or status is None:
        result = _real_describe_short(self)
    else:
        # moto validates the status it reports; an undeclared one is reported as it is.
        self._status = "RUNNING"
        try:
            result = _real_describe_short(self)
        finally:
            self._status = status
        result["status"] = status
    reason = getattr(self, "_tern_container_reason", None)
    if reason:
        result.setdefault("container", {})["reason"] = reason
    return result


Job.describe_short = _describe_short

_real_describe = Job.describe


def _describe(self):
    result = _real_describe(self)
    reason = getattr(self, "_tern_container_reason", None)
    if reason:
        result.setdefault("container", {})["reason"] = reason
    if self.exit_code is not None and "container" in result:
        result["container"]["exitCode"] = self.exit_code
    return result


Job.describe = _describe


def _terminate(self, reason):
    if not self.job_stopped:
        self._mark_stopped(success=False)
        self.job_stopped_reason = reason


Job.terminate = _terminate


def _setup(port, queue):
    import boto3

    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
            break
        except Exception:
            time.sleep(0.1)
    kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    boto3.client("iam", **kw).create_role(RoleName="batchrole", AssumeRolePolicyDocument="{}")
    batch = boto3.client("batch", **kw)
    batch.create_compute_environment(
        computeEnvironmentName="ce1", type="UNMANAGED", serviceRole="arn:aws:iam::123456789012:role/batchrole"
    )
    batch.create_job_queue(
        jobQueueName=queue, state="ENABLED", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce1"}]
    )
    boto3.client("s3", **kw).create_bucket(Bucket="tern-batch")
    ready = os.environ.get("TERN_MOTO_READY_FILE")
    if ready:
        with open(ready + ".tmp", "w") as f:
            f.write("ready\n")
        os.replace(ready + ".tmp", ready)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--setup", metavar="QUEUE")
    args = parser.parse_args()
    default_user_config["batch"] = {"use_docker": False}
    if args.setup:
        threading.Thread(target=_setup, args=(args.port, args.setup), daemon=True).start()
    moto_main(["-H", "127.0.0.1", "-p", str(args.port)])
