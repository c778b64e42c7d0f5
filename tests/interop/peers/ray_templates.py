"""Serializes real Ray tasks with flytekitplugins-ray 1.16.31 (run with $TERN_RAY_PYTHON, the Ray virtualenv, which
holds flytekit and the plugin next to ray[default]) and writes each TaskTemplate protobuf to OUT_DIR/<name>.pb.

    PYTHONPATH=examples/ray python tests/interop/peers/ray_templates.py OUT_DIR

The tasks are examples/ray/ray_tasks.py's (module-level, as flytekit requires).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path

from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable

import ray_tasks

TASKS = {"sum_of_squares": ray_tasks.sum_of_squares, "fails": ray_tasks.fails, "sleeps": ray_tasks.sleeps}


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    settings = SerializationSettings(
        image_config=ImageConfig.auto_default_image(), project="flytesnacks", domain="development", version="v1"
    )
    for name, task in TASKS.items():
        template = get_serializable(OrderedDict(), settings, task).template
        (out / f"{name}.pb").write_bytes(template.to_flyte_idl().SerializeToString())
    print(" ".join(sorted(TASKS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
