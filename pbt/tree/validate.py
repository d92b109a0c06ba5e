"""Validating one parsed `pbt.tree/v1` object: schema version, fields and structure, with errors
that name the node by its id."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from pbt.errors import ValidationError, from_pydantic
from pbt.tree.model import SCHEMA_VERSION, StructureError, Tree


def pydantic_error(exc: PydanticValidationError, location: str | None, data: Any = None) -> ValidationError:
    """Turn pydantic's error into ours (`pbt.errors.from_pydantic`); a node of `data` is named by
    its id (``nodes[id=7].parent``) when it has one, and structure errors keep their own field."""
    cause = (exc.errors()[0].get("ctx") or {}).get("error") if exc.error_count() else None
    if isinstance(cause, StructureError):
        return ValidationError(cause.message, field=cause.field, location=location)
    err = from_pydantic(exc, location=location, echo_input=True)
    return ValidationError(err.message, field=_name_nodes(err.field, data), location=location)


_NODE = re.compile(r"^nodes(?:\[(\d+)\]|\.([^.\[]+))")


def _name_nodes(path: str | None, data: Any) -> str | None:
    """``nodes.<key>`` (nodes keyed by id) and ``nodes[i]`` of a node with an id as ``nodes[id=...]``."""
    match = _NODE.match(path or "")
    if match is None:
        return path
    if match.group(2) is not None:
        return f"nodes[id={match.group(2)}]{path[match.end() :]}"
    nodes = data.get("nodes") if isinstance(data, dict) else None
    index = int(match.group(1))
    node = nodes[index] if isinstance(nodes, list) and index < len(nodes) else None
    node_id = node.get("id") if isinstance(node, dict) else None
    return f"nodes[id={node_id}]{path[match.end() :]}" if isinstance(node_id, str) else path


def tree_from_dict(data: Any, *, location: str | None = None) -> Tree:
    """Validate one parsed `pbt.tree/v1` object (schema version, fields and structure)."""
    if not isinstance(data, dict):
        raise ValidationError(f"expected a JSON object, got {type(data).__name__}", location=location)
    if "schema" not in data:
        raise ValidationError(
            f"missing field (expected {SCHEMA_VERSION!r})", field="schema", location=location
        )
    if data["schema"] != SCHEMA_VERSION:
        raise ValidationError(
            f"unknown schema version {data['schema']!r} (this build reads {SCHEMA_VERSION!r})",
            field="schema",
            location=location,
        )
    try:
        return Tree.model_validate(data)
    except PydanticValidationError as exc:
        raise pydantic_error(exc, location, data) from None
    except StructureError as exc:
        raise ValidationError(exc.message, field=exc.field, location=location) from None
