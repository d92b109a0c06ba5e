"""Parsing untrusted text without surprises: YAML without aliases, JSON with a depth bound.

`load_yaml` refuses YAML aliases (``*anchor``): a few lines of nested aliases expand into
billions of nodes ("billion laughs"); no configuration of the project needs them. Both loaders
turn every failure (syntax, nesting too deep, text that is not UTF-8) into a
`pbt.errors.ValidationError` naming the source, never another exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pbt.errors import ValidationError

#: deepest nesting of JSON/YAML containers accepted (configs and records are a few levels deep)
MAX_DEPTH = 64


class NoAliasLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses aliases and nesting deeper than `MAX_DEPTH`."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(None, None, "YAML aliases (*name) are not accepted", event.start_mark)
        depth = getattr(self, "_pbt_depth", 0)
        if depth > MAX_DEPTH:
            raise yaml.MarkedYAMLError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
            )
        self._pbt_depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._pbt_depth = depth


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion to overflow)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        stack.extend((child, depth + 1) for child in items)
    return deepest


def load_yaml(text: str, source: str | None = None) -> Any:
    """`yaml.safe_load` without aliases and with a depth bound; errors name ``source:line``."""
    try:
        return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if source and mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValidationError(f"not valid YAML: {problem}", location=where) from None
    except RecursionError:
        raise ValidationError(f"nested deeper than {MAX_DEPTH} levels", location=source) from None


def loads_json(text: str | bytes, source: str | None = None) -> Any:
    """`json.loads` with a depth bound; errors name the source (and line and column)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{source}:{exc.lineno}" if source else None
        raise ValidationError(f"not valid JSON ({exc.msg} at column {exc.colno})", location=where) from None
    except UnicodeDecodeError:
        raise ValidationError("not UTF-8 text", location=source) from None
    except RecursionError:
        raise ValidationError(f"nested deeper than {MAX_DEPTH} levels", location=source) from None
    if _depth(value) > MAX_DEPTH:
        raise ValidationError(f"nested deeper than {MAX_DEPTH} levels", location=source)
    return value


def read_text(path: str | Path, what: str = "file") -> str:
    """A file's UTF-8 text; a missing file, a folder or other bytes are a `ValidationError`."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ValidationError(f"{what} {path} is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
