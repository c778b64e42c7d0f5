"""The flytekit code of examples/batch/batch.yaml's AWS Batch node (what the job's image runs).

    @task(task_config=AWSBatchConfig(...)) serializes to a task of type `aws-batch`: `custom` is the AWSBatchConfig,
    the container args run flytekit's entrypoint (`pyflyte-execute --inputs {{.input}} --output-prefix
    {{.outputPrefix}}/0 ...`), which reads inputs.pb and writes outputs.pb under the output prefix.
"""

from datetime import timedelta

from flytekit import task
from flytekitplugins.awsbatch import AWSBatchConfig


@task(
    task_config=AWSBatchConfig(platformCapabilities="EC2", tags={"team": "data"}, parameters={"mode": "nightly"}),
    retries=2,
    timeout=timedelta(hours=1),
)
def reindex(shards: int) -> None:
    for shard in range(shards):
        print(f"reindexing shard {shard}", flush=True)
