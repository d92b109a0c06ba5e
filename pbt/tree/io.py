"""Reading and writing tree files (JSON Lines, one tree per line).

Two formats: ``native`` (`pbt.tree/v1`, see `pbt.tree.model`) and ``reference`` (the trajectory
files of the reference implementation, converted losslessly by `pbt.tree.reference`); ``auto``
decides per line. Every error names ``file:line`` and the field; ``skip_invalid=True`` skips bad
lines and reports each one instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError as PydanticValidationError

from pbt.errors import ValidationError
from pbt.store import atomic_write_bytes
from pbt.tree.model import StructureError, Tree
from pbt.tree.validate import tree_from_dict

log = logging.getLogger(__name__)

Format = Literal["native", "reference", "auto"]
FORMATS = ("native", "reference", "auto")


@dataclass(frozen=True)
class SkippedLine:
    location: str  # file:line
    reason: str


@dataclass
class LoadResult:
    trees: list[Tree] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)
    #: file path -> number of non-empty lines read
    lines: dict[str, int] = field(default_factory=dict)


def tree_to_json_line(tree: Tree) -> str:
    """One line of a native tree file (no trailing newline)."""
    return tree.model_dump_json(by_alias=True)


def parse_tree(data: Any, fmt: Format = "native", *, location: str | None = None) -> Tree:
    """A parsed JSON object in the given format -> Tree."""
    if fmt == "auto":
        fmt = "reference" if isinstance(data, dict) and "schema" not in data and "data" in data else "native"
    if fmt == "native":
        return tree_from_dict(data, location=location)
    if fmt == "reference":
        from pbt.tree.reference import tree_from_reference

        return tree_from_reference(data, location=location)
    raise ValidationError(f"unknown tree format {fmt!r} (expected one of {FORMATS})", field="format")


def iter_trees(
    path: str | Path,
    fmt: Format = "native",
    skip_invalid: bool = False,
    skipped: list[SkippedLine] | None = None,
) -> Iterator[Tree]:
    """Stream the trees of one file. Bad lines raise, or with `skip_invalid` are appended to
    `skipped` (and logged) and reading goes on. Blank lines are ignored."""
    for _, tree in iter_located_trees(path, fmt, skip_invalid, skipped):
        yield tree


def iter_located_trees(
    path: str | Path,
    fmt: Format = "native",
    skip_invalid: bool = False,
    skipped: list[SkippedLine] | None = None,
) -> Iterator[tuple[str, Tree]]:
    """Like `iter_trees`, yielding ``("file:line", tree)``."""
    path = Path(path)
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise ValidationError(f"tree file not found: {path}", field="trees") from None
    except OSError as exc:
        raise ValidationError(f"cannot read tree file {path}: {exc.strerror}", field="trees") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            location = f"{path}:{lineno}"
            try:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ValidationError(
                        f"not UTF-8 text (byte {exc.start + 1})", location=location
                    ) from None
                if not line.strip():
                    continue
                if fmt == "native":
                    try:  # fast path: pydantic's JSON parser; any problem is re-reported below
                        tree = Tree.model_validate_json(line)
                    except (PydanticValidationError, StructureError):
                        pass
                    else:
                        if "schema_version" in tree.model_fields_set:  # the key must be present
                            yield location, tree
                            continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValidationError(
                        f"malformed JSON: {exc.msg} (column {exc.colno})", location=location
                    ) from None
                except RecursionError:
                    raise ValidationError("JSON nested too deeply", location=location) from None
                tree = parse_tree(data, fmt, location=location)
            except ValidationError as exc:
                if not skip_invalid:
                    raise
                log.warning("skipping %s", exc)
                if skipped is not None:
                    reason = f"field '{exc.field}': {exc.message}" if exc.field else exc.message
                    skipped.append(SkippedLine(location, reason))
                continue
            yield location, tree


def load_trees(paths: Iterable[str | Path], fmt: Format = "native", skip_invalid: bool = False) -> LoadResult:
    """Read several files. Tree ids must be unique across all of them (a repeated id is an
    error, or a skipped line with `skip_invalid`)."""
    result = LoadResult()
    seen: dict[str, str] = {}
    for path in paths:
        before = len(result.trees) + len(result.skipped)
        for location, tree in iter_located_trees(path, fmt, skip_invalid, result.skipped):
            if tree.id in seen:
                message = f"duplicate tree id {tree.id!r} (first seen at {seen[tree.id]})"
                if not skip_invalid:
                    raise ValidationError(message, field="id", location=location)
                result.skipped.append(SkippedLine(location, f"field 'id': {message}"))
                continue
            seen[tree.id] = location
            result.trees.append(tree)
        result.lines[str(path)] = len(result.trees) + len(result.skipped) - before
    return result


def read_trees(path: str | Path, fmt: Format = "native", skip_invalid: bool = False) -> list[Tree]:
    """All trees of one file (see `iter_trees`; skipped lines are logged)."""
    return list(iter_trees(path, fmt, skip_invalid))


def trees_to_bytes(trees: Iterable[Tree], fmt: Literal["native", "reference"] = "native") -> bytes:
    if fmt == "native":
        lines = [tree_to_json_line(t) for t in trees]
    elif fmt == "reference":
        from pbt.tree.reference import tree_to_reference

        lines = [json.dumps(tree_to_reference(t), ensure_ascii=False) for t in trees]
    else:
        raise ValidationError(f"unknown output format {fmt!r} (expected native or reference)", field="format")
    return "".join(line + "\n" for line in lines).encode("utf-8")


def write_trees(
    path: str | Path, trees: Iterable[Tree], fmt: Literal["native", "reference"] = "native"
) -> int:
    """Write a tree file atomically (readers see the old file or the whole new one).
    Returns the number of trees written."""
    trees = list(trees)
    atomic_write_bytes(Path(path), trees_to_bytes(trees, fmt))
    return len(trees)
