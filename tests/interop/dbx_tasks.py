"""Databricks tasks written with flytekitplugins-spark 1.16.31, serialized by test_databricks.py and executed by
minilake's subprocess executor through the test entrypoint (peers/databricks_entrypoint.py). Module level, so
`pyflyte-execute ... task-module dbx_tasks task-name <fn>` finds them (PYTHONPATH=tests/interop)."""

from flytekit import current_context, task
from flytekitplugins.spark import Databricks, DatabricksV2

INSTANCE = "dbc-tern-interop.cloud.databricks.com"
CONF = {
    "run_name": "tern-interop",
    "new_cluster": {"spark_version": "13.3.x-scala2.12", "node_type_id": "m5.xlarge", "num_workers": 1},
    "timeout_seconds": 900,
}


@task(task_config=DatabricksV2(databricks_conf=CONF, databricks_instance=INSTANCE,
                               spark_conf={"spark.driver.memory": "512m", "spark.ui.enabled": "false"}))
def spark_sum(n: int) -> int:
    """Real Spark: the session flytekit's plugin opens (local[*] here, the cluster on Databricks)."""
    sess = current_context().spark_session
    return int(sess.sparkContext.parallelize(range(n + 1)).sum())


@task(task_config=Databricks(databricks_conf=CONF, databricks_instance=INSTANCE,
                             spark_conf={"spark.driver.memory": "512m", "spark.ui.enabled": "false"}))
def legacy_greet(name: str, times: int) -> str:
    """The deprecated `Databricks` config: task type `spark`."""
    return " ".join([f"hello {name}"] * times)
