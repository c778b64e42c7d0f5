"""flytekit tasks for test_gpu.py: tasks that ask for a GPU as flytekit writes it (`accelerator=T4`,
`Resources(gpu="1")`), with the task type `gpu` that routes them to Tern's gpu agent.

flytekit has no task type of its own for "a function that needs a GPU" (on Kubernetes a plain `python-task` with
GPU resources gets one): a task-config plugin (`Gpu`) gives these tasks the type `gpu`, the standard way a flytekit
plugin names its task type.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from flytekit import Resources, task
from flytekit.core.python_function_task import PythonFunctionTask
from flytekit.extend import TaskPlugins
from flytekit.extras.accelerators import T4


@dataclass
class Gpu:
    """Runs the task on a Tern gpu agent's host."""


class GpuFunctionTask(PythonFunctionTask[Gpu]):
    _TASK_TYPE = "gpu"

    def __init__(self, task_config: Gpu, task_function, **kwargs):
        super().__init__(task_config=task_config, task_function=task_function, task_type=self._TASK_TYPE, **kwargs)


TaskPlugins.register_pythontask_plugin(Gpu, GpuFunctionTask)


@task(task_config=Gpu(), accelerator=T4, requests=Resources(gpu="1"), limits=Resources(gpu="1"))
def visible_devices(marker: str, pause: float) -> str:
    """Appends a line to `marker` (jobs counted by what ran), waits `pause` s, returns the devices it was given."""
    with open(marker, "a") as f:
        f.write("run\n")
    time.sleep(pause)
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    print(f"tern-gpu devices={devices}", flush=True)
    return devices
