"""A no-op async flytekit connector with task type ``echo``, for benchmarks (not a test).

``create`` returns at once, ``get`` returns SUCCEEDED with no outputs and ``delete`` does nothing, so a
benchmark measures the connector server itself (gRPC, decoding, dispatch) rather than any work.
Tern's own ``echo`` agent is the counterpart on the other side of the comparison.

    cd tests/interop/connectors && pyflyte serve connector --port 8000 --prometheus_port 9091 --modules noop_echo
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

TASK_TYPE = "echo"


@dataclass
class NoopEchoMetadata(ResourceMeta):
    v: int = 1


class NoopEchoConnector(AsyncConnectorBase):
    name = "Noop Echo Connector"

    def __init__(self):
        super().__init__(task_type_name=TASK_TYPE, metadata_type=NoopEchoMetadata)

    async def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: Optional[LiteralMap] = None,
        **kwargs,
    ) -> NoopEchoMetadata:
        return NoopEchoMetadata()

    async def get(self, resource_meta: NoopEchoMetadata, **kwargs) -> Resource:
        return Resource(phase=TaskExecution.SUCCEEDED)

    async def delete(self, resource_meta: NoopEchoMetadata, **kwargs):
        return None


ConnectorRegistry.register(NoopEchoConnector())
