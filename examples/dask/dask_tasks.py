"""A flytekit Dask task for Tern's dask agent (examples/dask/dask.yaml runs it).

`Dask(...)` is flytekitplugins-dask's task config: on Kubernetes it becomes a DaskJob; with Tern's dask agent the
task runs on the gateway's host against an ephemeral local cluster of that size (or the configured scheduler).
`Client()` finds the cluster through DASK_SCHEDULER_ADDRESS, which the agent sets.
"""

from flytekit import Resources, task
from flytekitplugins.dask import Dask, WorkerGroup


@task(task_config=Dask(workers=WorkerGroup(number_of_workers=2, limits=Resources(cpu="1", mem="1Gi"))))
def sum_of_squares(n: int) -> int:
    from distributed import Client

    with Client() as client:
        squares = client.map(lambda x: x * x, range(n))
        total = client.submit(sum, squares).result()
        workers = len(client.scheduler_info()["workers"])
    print(f"sum of squares below {n} = {total}, on {workers} workers")
    return int(total)
