"""The Python code behind examples/spark/spark.yaml: a flytekitplugins-spark `Spark` task (task type `spark`), run
on a Spark cluster by flytekit's entrypoint (`pyflyte-execute ... -- task-module spark_tasks task-name
order_revenue`).

On a real cluster this module is in the image (or on the nodes' PYTHONPATH); against the local standalone master
the worker is started with PYTHONPATH=examples/spark (see README.md)."""

from flytekit import current_context, task
from flytekitplugins.spark import Spark


@task(task_config=Spark(spark_conf={"spark.driver.memory": "512m", "spark.executor.memory": "512m", "spark.cores.max": "1"}))
def order_revenue(orders: int) -> float:
    """Revenue of `orders` synthetic orders (order i costs 5 + i % 100 / 10), computed with Spark."""
    sc = current_context().spark_session.sparkContext
    return float(sc.parallelize(range(orders)).map(lambda i: 5 + (i % 100) / 10).sum())
