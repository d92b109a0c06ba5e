"""The project's exceptions, the one table that maps them to transport codes, and the one
conversion of pydantic's errors into ours.

Servers read `STATUS` (through `status_of`): the agent server for HTTP statuses, the gRPC
interceptor (`services.common.errors`) for status codes. Anything that is no `PbtError` is a
bug and becomes INTERNAL / 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: the most characters of a request's value an error message repeats (ids, paths, endpoints)
ECHO_CHARS = 200


def cap(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def shorten(value: object, limit: int = ECHO_CHARS) -> str:
    """``repr(value)`` (str() for non-strings) cut by `cap`, for error messages."""
    return cap(repr(value) if isinstance(value, str) else str(value), limit)


class PbtError(Exception):
    """Base class of every error the project raises on purpose."""


class ValidationError(PbtError, ValueError):
    """Bad input. `field` is a dotted path (``request.tree_shape.max_turns``) or ``file:line``."""

    def __init__(self, message: str, *, field: str | None = None, location: str | None = None):
        self.field = field
        self.location = location
        where = " ".join(p for p in (location, f"field '{field}'" if field else None) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message


class NotFoundError(PbtError, LookupError):
    """A named thing (tree, job, object, model, evaluation) does not exist."""


class UnavailableError(PbtError):
    """A dependency (agent endpoint, object store) could not be reached after retries."""

    def __init__(self, message: str, *, endpoint: str | None = None):
        self.endpoint = endpoint
        super().__init__(f"{endpoint}: {message}" if endpoint else message)


class ConflictError(PbtError):
    """The request conflicts with existing state (for example a job id reused with another config)."""


# ---- the transport table ---------------------------------------------------------------------
@dataclass(frozen=True)
class Status:
    """What an error kind answers on each transport: a gRPC status code name and an HTTP status."""

    grpc: str
    http: int


#: each kind's status, most specific first. A plain `PbtError` reports a state the request met
#: (a failed step, an evaluation that failed, a verdict that refuses), not a malformed request:
#: the caller cannot fix it by changing fields, so it is FAILED_PRECONDITION / 409 like a conflict.
STATUS: dict[type[PbtError], Status] = {
    ValidationError: Status("INVALID_ARGUMENT", 400),
    NotFoundError: Status("NOT_FOUND", 404),
    ConflictError: Status("FAILED_PRECONDITION", 409),
    UnavailableError: Status("UNAVAILABLE", 503),
    PbtError: Status("FAILED_PRECONDITION", 409),
}
#: anything else: a bug
INTERNAL = Status("INTERNAL", 500)


def status_of(exc: BaseException) -> Status:
    """The `Status` of an exception: its nearest kind in `STATUS`; `INTERNAL` if none."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return INTERNAL


def kind_for_http(status: int) -> type[PbtError]:
    """The error kind a client raises for an HTTP error status: the first kind `STATUS` maps to
    it (404 -> `NotFoundError`, 409 -> `ConflictError`), else `ValidationError` for any other 4xx
    and `UnavailableError` for 5xx."""
    for kind, mapped in STATUS.items():
        if mapped.http == status:
            return kind
    return ValidationError if status < 500 else UnavailableError


# ---- pydantic's errors as ours ---------------------------------------------------------------
_WRAPPERS = ("function-after", "function-before", "function-wrap", "function-plain")
_NAMED_FIELD = re.compile(r"^([A-Za-z_][\w]*(?:\[\d+\])*(?:\.[A-Za-z_][\w]*(?:\[\d+\])*)*): (.+)$", re.S)


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic location as a dotted path with ``[i]`` for list indices: ``models[0].endpoint``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part) not in _WRAPPERS:
            out += ("." if out else "") + str(part)
    return out


def _split_path(path: str) -> tuple[Any, ...]:
    parts: list[Any] = []
    for piece in path.split("."):
        name, *indices = piece.split("[")
        parts.append(name)
        parts.extend(int(i.rstrip("]")) for i in indices)
    return tuple(parts)


def from_pydantic(
    exc: Any,
    *,
    prefix: str | None = None,
    location: str | None = None,
    line_of: Callable[[tuple[Any, ...]], int | None] | None = None,
    echo_input: bool = False,
) -> ValidationError:
    """pydantic's `ValidationError` as ours: the first problem, its field as ``prefix`` + the
    dotted path (``config.models[0].endpoint``), and how many more there are.

    Model-level checks that name their field as ``"path: message"`` get that path. With
    `line_of` (a location -> line number, e.g. from a YAML file) `location` becomes
    ``location:line``; with `echo_input` the message repeats the bad value (80 characters)."""
    errors = exc.errors(include_url=False)
    if not errors:
        return ValidationError(str(exc), field=(prefix or "").rstrip(".") or None, location=location)
    err = errors[0]
    loc = tuple(p for p in err["loc"] if str(p) not in _WRAPPERS)
    message = str(err["msg"]).removeprefix("Value error, ")
    named = _NAMED_FIELD.match(message)
    if named:
        loc, message = (*loc, *_split_path(named.group(1))), named.group(2)
    if err["type"] == "missing":
        message = "missing field"
    elif echo_input and err["type"] != "extra_forbidden" and "input" in err:
        message = f"{message} (got {cap(_json(err['input']), 80)})"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    path = field_path(loc)
    field = f"{prefix or ''}{path}" if path else (prefix or "").rstrip(".") or None
    if location and line_of is not None:
        line = line_of(loc)
        if line is not None:
            location = f"{location}:{line}"
    return ValidationError(message, field=field, location=location)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str)
