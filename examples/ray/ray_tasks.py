"""flytekit Ray tasks for examples/ray/ray.yaml and the Ray interop tests (tests/interop/test_ray.py).

`pyflyte-execute` runs them on the Ray cluster as the job's entrypoint: `ray.init()` (flytekitplugins-ray's
pre_execute) joins the cluster the job runs on, and the `@ray.remote` functions run on its workers. The module
must be importable there (on PYTHONPATH of `ray start`, or packaged in the cluster's image).
"""

from __future__ import annotations

import os
import time

import ray
from flytekit import task
from flytekitplugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig


@ray.remote
def square(x: int) -> int:
    return x * x


# What a KubeRay deployment would create. Against an existing cluster only runtime_env applies (Tern's Ray agent
# ignores the cluster spec); env_vars reach the driver and every worker.
RAY_CONFIG = RayJobConfig(
    head_node_config=HeadNodeConfig(ray_start_params={"num-cpus": "1"}),
    worker_node_config=[WorkerNodeConfig(group_name="workers", replicas=1)],
    runtime_env={"env_vars": {"TERN_RAY_GREETING": "hello from runtime_env"}},
    shutdown_after_job_finishes=True,
    ttl_seconds_after_finished=600,
)


@task(task_config=RAY_CONFIG)
def sum_of_squares(n: int) -> int:
    """The sum of i*i for i < n, each square a Ray task."""
    print(os.environ.get("TERN_RAY_GREETING", "no runtime_env"), flush=True)
    return sum(ray.get([square.remote(i) for i in range(n)]))


@task(task_config=RAY_CONFIG)
def fails(n: int) -> int:
    """Raises for n > 0: the job's entrypoint exits non-zero."""
    if n > 0:
        raise ValueError(f"tern-ray-example: refusing n={n}")
    return n


@task(task_config=RAY_CONFIG)
def sleeps(seconds: float) -> float:
    """Runs until stopped (for DeleteTask)."""
    time.sleep(seconds)
    return seconds
