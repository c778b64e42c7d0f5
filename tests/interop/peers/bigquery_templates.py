"""Serializes real BigQuery tasks with flytekitplugins-bigquery 1.16.31 (run with $TERN_BQ_PLUGIN_PYTHON, the
plugin's own virtualenv) and writes each TaskTemplate protobuf to OUT_DIR/<name>.pb.

    python tests/interop/peers/bigquery_templates.py OUT_DIR

The tasks are module-level (flytekit refuses nested task functions outside test modules).
"""

from __future__ import annotations

import datetime
import sys

from flytekit import StructuredDataset, kwtypes
from flytekitplugins.bigquery import BigQueryConfig, BigQueryTask

from flytekit_templates import write_templates

PROJECT = "tern-interop"

typed_params = BigQueryTask(
    name="interop.bigquery.typed_params",
    query_template="SELECT @i + 1 AS i, @f * 2 AS f, @s AS s, NOT @b AS b, @d AS d",
    task_config=BigQueryConfig(ProjectID=PROJECT, Location="US"),
    inputs=kwtypes(i=int, f=float, s=str, b=bool, d=datetime.datetime),
    output_structured_dataset_type=StructuredDataset,
)

no_output = BigQueryTask(
    name="interop.bigquery.no_output",
    query_template="SELECT 1 AS one",
    task_config=BigQueryConfig(ProjectID=PROJECT),  # Location unset: null in custom
)

bad_sql = BigQueryTask(
    name="interop.bigquery.bad_sql",
    query_template="SELEC 1",
    task_config=BigQueryConfig(ProjectID=PROJECT, Location="US"),
)

missing_table = BigQueryTask(
    name="interop.bigquery.missing_table",
    query_template="SELECT * FROM tern_interop_nowhere.missing_table",
    task_config=BigQueryConfig(ProjectID=PROJECT, Location="US"),
    output_structured_dataset_type=StructuredDataset,
)

long_running = BigQueryTask(
    name="interop.bigquery.long_running",
    query_template="SELECT 1 AS one /* TERN_HOLD */",  # the emulator reports it RUNNING until cancelled
    task_config=BigQueryConfig(ProjectID=PROJECT, Location="US"),
)

TASKS = {
    "typed_params": typed_params,
    "no_output": no_output,
    "bad_sql": bad_sql,
    "missing_table": missing_table,
    "long_running": long_running,
}


if __name__ == "__main__":
    sys.exit(write_templates(TASKS, sys.argv))
