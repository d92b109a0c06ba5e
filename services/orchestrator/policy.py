"""What a request may make the orchestrator touch on its own machine.

Requests name agent endpoints, dataset and persona files and object stores. Over the network
these are only safe within limits the operator sets when starting the server:

- agent endpoints must be ``http(s)://`` unless local backends are allowed (``local:DIR`` loads a
  model from the server's disk, ``scripted:FILE`` reads a file): ``--allow-local-backends``;
- with data roots (``--data-root``, repeatable), dataset paths, persona files and local store
  paths must lie under one of them (S3 stores are always allowed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pbt.errors import ValidationError


@dataclass(frozen=True)
class ServerPolicy:
    allow_local_backends: bool = False
    data_roots: tuple[Path, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, allow_local_backends: bool = False, data_roots: Sequence[str | Path] = ()) -> ServerPolicy:
        return cls(allow_local_backends, tuple(Path(r).resolve() for r in data_roots))

    def check_endpoint(self, endpoint: str, field_path: str) -> None:
        if self.allow_local_backends or endpoint.startswith(("http://", "https://")):
            return
        raise ValidationError(
            f"this server accepts only http(s):// agent endpoints, got {endpoint!r} "
            "(start it with --allow-local-backends for local:/scripted: specs)",
            field=field_path,
        )

    def check_path(self, path: str | None, field_path: str) -> None:
        if not path or not self.data_roots or path.startswith("s3://"):
            return
        resolved = Path(path.removeprefix("file://")).resolve()
        if not any(resolved == root or root in resolved.parents for root in self.data_roots):
            roots = ", ".join(str(r) for r in self.data_roots)
            raise ValidationError(f"{path!r} is outside the server's data roots ({roots})", field=field_path)
