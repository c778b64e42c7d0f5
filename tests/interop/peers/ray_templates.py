"""Serializes real Ray tasks with flytekitplugins-ray 1.16.31 (run with $TERN_RAY_PYTHON, the Ray virtualenv, which
holds flytekit and the plugin next to ray[default]) and writes each TaskTemplate protobuf to OUT_DIR/<name>.pb.

    PYTHONPATH=examples/ray python tests/interop/peers/ray_templates.py OUT_DIR

The tasks are examples/ray/ray_tasks.py's (module-level, as flytekit requires).
"""

from __future__ import annotations

import sys

import ray_tasks
from flytekit_templates import write_templates

TASKS = {"sum_of_squares": ray_tasks.sum_of_squares, "fails": ray_tasks.fails, "sleeps": ray_tasks.sleeps}

if __name__ == "__main__":
    sys.exit(write_templates(TASKS, sys.argv))
