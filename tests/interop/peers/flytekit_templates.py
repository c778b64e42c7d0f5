"""Serializes flytekit tasks as FlytePropeller receives them (`pyflyte register`'s TaskTemplate) and writes each to
OUT_DIR/<name>.pb. Shared by the plugin template scripts (bigquery_templates.py, ray_templates.py), each run with
its plugin's own virtualenv.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path


def write_templates(tasks: dict, argv: list) -> int:
    """`argv[1]` is OUT_DIR. Prints the names written."""
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    settings = SerializationSettings(
        image_config=ImageConfig.auto_default_image(), project="flytesnacks", domain="development", version="v1"
    )
    for name, task in tasks.items():
        template = get_serializable(OrderedDict(), settings, task).template
        (out / f"{name}.pb").write_bytes(template.to_flyte_idl().SerializeToString())
    print(" ".join(sorted(tasks)))
    return 0
