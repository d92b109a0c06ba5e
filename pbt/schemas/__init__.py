"""Published JSON Schemas of the project's file formats."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_schema(name: str = "tree.v1") -> dict[str, Any]:
    """The JSON Schema ``pbt/schemas/<name>.schema.json`` as a dict."""
    return json.loads(resources.files("pbt.schemas").joinpath(f"{name}.schema.json").read_text("utf-8"))
