"""Serializes real DGX Cloud Lepton tasks with flytekitplugins-dgxc-lepton 1.16.31 (run with $TERN_LEPTON_PYTHON, the
virtualenv of tests/interop/requirements-lepton.txt: flytekit 1.16.31, the plugin and leptonai 0.27.3, whose
`leptonai.api.v1` the plugin imports) and writes each TaskTemplate protobuf to OUT_DIR/<name>.pb.

    python tests/interop/peers/lepton_templates.py OUT_DIR
"""

from __future__ import annotations

import os
import sys
import warnings

from flytekit_templates import write_templates

# The plugin warns when it is not on Lepton's platform; the templates are the same.
os.environ.setdefault("LEPTON_PLATFORM_VALIDATION", "false")
warnings.simplefilter("ignore")

from flytekitplugins.dgxc_lepton import (  # noqa: E402
    EndpointEngineConfig,
    EnvironmentConfig,
    LeptonEndpointConfig,
    LeptonEndpointDeletionTask,
    LeptonEndpointDeploymentTask,
    MountReader,
    ScalingConfig,
)

web = LeptonEndpointDeploymentTask(
    name="deploy_web",
    config=LeptonEndpointConfig(
        endpoint_name="interop-web",
        resource_shape="cpu.small",
        node_group="ng-test",
        endpoint_config=EndpointEngineConfig.custom(image="python:3.11-slim", port=8080),
        environment=EnvironmentConfig.create(env_vars={"MODE": "interop"}, secrets={"HF_TOKEN": "hf-secret"}),
        endpoint_readiness_timeout=120,
    ),
)

llm = LeptonEndpointDeploymentTask(
    name="deploy_llm",
    config=LeptonEndpointConfig(
        endpoint_name="interop-llm",
        resource_shape="gpu.1xh100",
        node_group="ng-gpu",
        endpoint_config=EndpointEngineConfig.vllm(served_model_name="llama", tensor_parallel_size=2, extra_args="--max-model-len 4096"),
        scaling=ScalingConfig.traffic(min_replicas=1, max_replicas=3, timeout=1800),
        mounts=MountReader.node_nfs(("/shared/models", "/models")),
        api_token_secret="ep-token",
        initial_delay_seconds=600,
        image_pull_secrets=["ngc"],
    ),
)

delete_web = LeptonEndpointDeletionTask(name="delete_web", endpoint_name="interop-web")

TASKS = {"deploy_web": web, "deploy_llm": llm, "delete_web": delete_web}

if __name__ == "__main__":
    sys.exit(write_templates(TASKS, sys.argv))
