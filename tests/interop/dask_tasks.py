"""flytekitplugins-dask tasks for test_dask.py. Imported only by the Dask virtualenv ($TERN_DASK_PYTHON): the test
serializes them there, and the Dask agent runs their `pyflyte-execute` with that python."""

import time

from flytekit import Resources, task
from flytekitplugins.dask import Dask, WorkerGroup


@task(task_config=Dask(workers=WorkerGroup(number_of_workers=2, limits=Resources(cpu="1", mem="600Mi"))))
def squares(n: int, marker: str, pause: float) -> int:
    """Sums squares on the cluster DASK_SCHEDULER_ADDRESS names (checking its size), then appends a line to
    `marker`: one line per run of the task."""
    from distributed import Client

    time.sleep(pause)
    with Client() as client:
        sizes = client.run(lambda dask_worker: (dask_worker.state.nthreads, dask_worker.memory_manager.memory_limit))
        assert sorted(sizes.values()) == [(1, 629145600), (1, 629145600)], sizes
        total = client.submit(sum, client.map(lambda x: x * x, range(n))).result()
    with open(marker, "a") as f:
        f.write("run\n")
    print(f"tern-dask squares({n}) = {total}", flush=True)
    return int(total)


@task(task_config=Dask())
def fails(n: int) -> int:
    if n > 0:
        raise ValueError(f"tern-dask refuses {n}")
    return n
