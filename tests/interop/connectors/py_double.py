"""A tiny third-party flytekit connector used by Tern's interop tests.

Task type ``py_double``: ``create`` reads the integer input ``x``; ``get`` returns ``y = 2 * x``.
A negative ``x`` makes the job fail in-band (``Resource.phase = FAILED`` with a message), the way real
connectors report a failed external job.

Serve it with flytekit's own server (the module must be importable, e.g. run from this directory):

    pyflyte serve connector --port 8000 --prometheus_port 9091 --modules py_double
"""

from dataclasses import dataclass
from typing import Optional

from flyteidl.core.execution_pb2 import TaskExecution

from flytekit.extend.backend.base_connector import (
    AsyncConnectorBase,
    ConnectorRegistry,
    Resource,
    ResourceMeta,
)
from flytekit.models.literals import LiteralMap
from flytekit.models.task import TaskTemplate

TASK_TYPE = "py_double"


@dataclass
class PyDoubleMetadata(ResourceMeta):
    x: int


def _read_x(inputs: Optional[LiteralMap]) -> int:
    if inputs is None or "x" not in inputs.literals:
        raise ValueError("py_double needs an integer input 'x'")
    primitive = inputs.literals["x"].scalar.primitive
    if primitive is None or primitive.integer is None:
        raise ValueError(f"py_double input 'x' must be an integer, got {inputs.literals['x']}")
    return int(primitive.integer)


class PyDoubleConnector(AsyncConnectorBase):
    name = "Py Double Connector"

    def __init__(self):
        super().__init__(task_type_name=TASK_TYPE, metadata_type=PyDoubleMetadata)

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: Optional[LiteralMap] = None,
        **kwargs,
    ) -> PyDoubleMetadata:
        return PyDoubleMetadata(x=_read_x(inputs))

    async def get(self, resource_meta: PyDoubleMetadata, **kwargs) -> Resource:
        if resource_meta.x < 0:
            return Resource(
                phase=TaskExecution.FAILED,
                message=f"py_double refuses negative input x={resource_meta.x}",
            )
        return Resource(phase=TaskExecution.SUCCEEDED, outputs={"y": 2 * resource_meta.x})

    async def delete(self, resource_meta: PyDoubleMetadata, **kwargs):
        return None


ConnectorRegistry.register(PyDoubleConnector())
