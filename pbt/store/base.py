"""The object store contract: one interface, a local folder and S3/MinIO behind it.

Keys are '/'-separated relative paths (``trees/job-1/q123.json``). Every write is atomic: a
reader sees either the old object or the whole new one, never part of it.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pbt.errors import ValidationError


def check_key(key: str) -> str:
    """Reject keys that could escape the store or are ambiguous."""
    if not key or key.startswith("/") or "\\" in key:
        raise ValidationError(
            f"invalid object key {key!r}: must be a relative '/'-separated path", field="key"
        )
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValidationError(f"invalid object key {key!r}: empty, '.' or '..' segment", field="key")
    return key


class ObjectStore(abc.ABC):
    """Where every artifact lives: trees, pairs, checkpoints, adapters, results."""

    #: a URL that names this store in manifests and messages (``file:///...`` or ``s3://bucket/prefix``)
    url: str

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write an object atomically (replacing any previous one)."""

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read an object; raises `pbt.errors.NotFoundError` when it does not exist."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under a prefix (recursive), in lexicographic order."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; missing objects are ignored."""

    @abc.abstractmethod
    def put_file(self, key: str, path: str | Path) -> None:
        """Upload a local file atomically."""

    @abc.abstractmethod
    def get_file(self, key: str, path: str | Path) -> Path:
        """Download an object to a local path (written atomically); returns the path."""

    def uri(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{check_key(key)}"

    # conveniences shared by both implementations
    def put_text(self, key: str, text: str) -> None:
        self.put_bytes(key, text.encode("utf-8"))

    def get_text(self, key: str) -> str:
        try:
            return self.get_bytes(key).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"not UTF-8 text (byte {exc.start})", location=self.uri(key)) from None

    def put_json(self, key: str, obj: Any) -> None:
        self.put_text(key, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")

    def get_json(self, key: str) -> Any:
        """The parsed object; damaged JSON is a `ValidationError` naming the object."""
        from pbt.safeload import loads_json

        return loads_json(self.get_text(key), self.uri(key))

    def put_jsonl(self, key: str, rows: list[dict[str, Any]]) -> None:
        self.put_text(key, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))

    def put_dir(self, prefix: str, directory: str | Path) -> list[str]:
        """Upload every file under a local folder; returns the keys written."""
        directory = Path(directory)
        keys = []
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(directory).as_posix()}"
            self.put_file(key, path)
            keys.append(key)
        return keys

    def get_dir(self, prefix: str, directory: str | Path) -> Path:
        """Download every object under a prefix into a local folder; returns the folder."""
        directory = Path(directory)
        prefix = prefix.rstrip("/") + "/"
        found = False
        for key in self.list(prefix):
            found = True
            self.get_file(key, directory / key[len(prefix) :])
        if not found:
            from pbt.errors import NotFoundError

            raise NotFoundError(f"no objects under {self.uri(prefix.rstrip('/'))}")
        return directory


class PrefixedStore(ObjectStore):
    """A view of another store under a key prefix (``runs/team-a/`` of the server's store).

    Servers give requests this instead of a store of their choosing: every key stays under the
    prefix, and the prefix itself is checked like a key (no ``..``, no absolute path)."""

    def __init__(self, base: ObjectStore, prefix: str):
        self.base = base
        self.prefix = check_key(prefix.strip("/")) + "/"
        self.url = f"{base.url.rstrip('/')}/{self.prefix.rstrip('/')}"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.base.put_bytes(self._key(key), data)

    def get_bytes(self, key: str) -> bytes:
        return self.base.get_bytes(self._key(key))

    def exists(self, key: str) -> bool:
        return self.base.exists(self._key(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        for key in self.base.list(self.prefix + prefix):
            yield key[len(self.prefix) :]

    def delete(self, key: str) -> None:
        self.base.delete(self._key(key))

    def put_file(self, key: str, path: str | Path) -> None:
        self.base.put_file(self._key(key), path)

    def get_file(self, key: str, path: str | Path) -> Path:
        return self.base.get_file(self._key(key), path)
