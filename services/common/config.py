"""Settings shared by every pbt gRPC server: limits, shutdown grace, auth, TLS, log level."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ENV_PREFIX = "PBT_GRPC_"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ServerConfig(BaseModel):
    """How a gRPC server listens. Every field can come from ``PBT_GRPC_<FIELD>`` (see `from_env`)."""

    model_config = ConfigDict(extra="forbid")

    max_message_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest request/response message.")
    grace_s: float = Field(10.0, ge=0.0, description="Seconds in-flight calls get to finish on shutdown.")
    auth_tokens: list[SecretStr] = Field(
        default_factory=list,
        description="Accepted bearer tokens ('authorization: Bearer <token>'); empty: no authentication. "
        "The health service is always reachable without a token (Kubernetes probes).",
    )
    tls_cert_file: Path | None = Field(None, description="PEM server certificate chain; enables TLS.")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_client_ca_file: Path | None = Field(
        None, description="PEM CA bundle; when set, clients must present certificates."
    )
    reflection: bool = Field(True, description="Serve gRPC server reflection.")
    max_concurrent_rpcs: int | None = Field(
        None, ge=1, description="Reject calls beyond this many in flight."
    )
    log_level: LogLevel | None = Field(
        None, description="Log level of the server process; None: INFO (DEBUG with `pbt -vv`)."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_tls(self) -> ServerConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be given together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: {path} is not a file")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> ServerConfig:
        """Read ``PBT_GRPC_MAX_MESSAGE_BYTES``, ``PBT_GRPC_GRACE_S``, ``PBT_GRPC_AUTH_TOKENS``
        (comma-separated), ``PBT_GRPC_TLS_CERT_FILE``, ``PBT_GRPC_TLS_KEY_FILE``,
        ``PBT_GRPC_TLS_CLIENT_CA_FILE``, ``PBT_GRPC_REFLECTION``, ``PBT_GRPC_MAX_CONCURRENT_RPCS``,
        ``PBT_GRPC_LOG_LEVEL``;
        explicit keyword overrides (not None) win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            values[name] = [t.strip() for t in raw.split(",") if t.strip()] if name == "auth_tokens" else raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
