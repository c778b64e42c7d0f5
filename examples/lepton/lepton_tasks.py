"""The flytekit side of examples/lepton/lepton.yaml (flytekitplugins-dgxc-lepton 1.16.31, leptonai<0.47).

    pyflyte register examples/lepton/lepton_tasks.py   # against a Flyte whose propeller calls `tern serve`
"""

from flytekit import workflow
from flytekitplugins.dgxc_lepton import (
    EndpointEngineConfig,
    EnvironmentConfig,
    LeptonEndpointConfig,
    LeptonEndpointDeletionTask,
    LeptonEndpointDeploymentTask,
)

deploy = LeptonEndpointDeploymentTask(
    name="deploy_web",
    config=LeptonEndpointConfig(
        endpoint_name="tern-example-web",
        resource_shape="cpu.small",
        node_group="your-node-group",
        endpoint_config=EndpointEngineConfig.custom(
            image="python:3.11-slim",
            command=["/bin/bash", "-c", "python3 -m http.server 8080 --bind 0.0.0.0"],
        ),
        environment=EnvironmentConfig.from_env(GREETING="hello from tern"),
        endpoint_readiness_timeout=900,
    ),
)

delete = LeptonEndpointDeletionTask(name="delete_web", endpoint_name="tern-example-web")


@workflow
def lepton_endpoint() -> str:
    url = deploy()
    deleted = delete()
    url >> deleted
    return url
