"""The project's exceptions: one base class, subclasses that carry what the user needs to fix it.

Servers map these once to transport codes (HTTP in the agent server, gRPC status codes in the
orchestrator and evaluator interceptors); anything else is a bug and becomes INTERNAL.
"""

from __future__ import annotations

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
