"""The Python code behind examples/warehouse/databricks.yaml: a flytekitplugins-spark task, run on Databricks by
flytekit's entrypoint (`pyflyte-execute ... -- task-module databricks_tasks task-name order_revenue`).

On a real workspace this module is in the task's container image (`container.image` in the workflow); against the
emulator it is on minilake's PYTHONPATH (see README.md)."""

from flytekit import current_context, task
from flytekitplugins.spark import DatabricksV2


@task(task_config=DatabricksV2(
    databricks_conf={"new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "m5.xlarge", "num_workers": 1}},
    spark_conf={"spark.ui.enabled": "false"},
))
def order_revenue(orders: int) -> float:
    """Revenue of `orders` synthetic orders (order i costs 5 + i % 100 / 10), computed with Spark."""
    sc = current_context().spark_session.sparkContext
    return float(sc.parallelize(range(orders)).map(lambda i: 5 + (i % 100) / 10).sum())
