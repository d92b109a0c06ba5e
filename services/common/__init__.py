"""Shared gRPC server infrastructure for the pbt services.

Start a server with `create_server` (health, reflection, limits, error mapping, auth, TLS), run it
with `serve_until_signal`; clients connect with `pbt.rpc.open_channel`. See `services.common.server.create_server`
for a usage example; `services.common.errors.status_for` documents the exception -> status mapping.
"""

from services.common.auth import BearerTokenInterceptor
from services.common.config import ServerConfig
from services.common.errors import ErrorMappingInterceptor, status_for
from services.common.server import ManagedServer, ServiceSpec, create_server, serve_until_signal

__all__ = [
    "BearerTokenInterceptor",
    "ErrorMappingInterceptor",
    "ManagedServer",
    "ServerConfig",
    "ServiceSpec",
    "create_server",
    "serve_until_signal",
    "status_for",
]
