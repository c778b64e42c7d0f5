"""Spark tasks written with flytekitplugins-spark 1.16.31 (`Spark` task config: task type `spark`), serialized by
test_spark.py and run by a Spark standalone master's worker through flytekit's entrypoint (`mainApplicationFile`)
with the rendered `pyflyte-execute` args. Module level, so `pyflyte-execute ... task-module spark_tasks task-name
<fn>` finds them (PYTHONPATH=tests/interop)."""

from flytekit import current_context, task
from flytekitplugins.spark import Spark

SPARK_CONF = {"spark.driver.memory": "512m", "spark.executor.memory": "512m", "spark.cores.max": "1", "spark.ui.enabled": "false"}


@task(task_config=Spark(spark_conf=SPARK_CONF))
def spark_sum(n: int) -> int:
    """Real Spark: the session flytekit's plugin opens, on the standalone cluster the driver was submitted to."""
    sess = current_context().spark_session
    print(f"tern-spark: master {sess.sparkContext.master}", flush=True)
    return int(sess.sparkContext.parallelize(range(n + 1)).sum())
