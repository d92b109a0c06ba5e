"""`create_server`: one way to start every pbt gRPC server (orchestrator, evaluator).

It adds the standard health service (status per service), reflection, message size limits,
the error-mapping interceptor, optional bearer-token auth and TLS, and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.auth import BearerTokenInterceptor
from services.common.config import ServerConfig
from services.common.errors import ErrorMappingInterceptor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSpec:
    """A servicer, the generated function that registers it, and its full name (``pbt.v1.XService``)."""

    servicer: Any
    add_to_server: Any
    name: str

    @classmethod
    def of(cls, servicer: Any, pb2: ModuleType, pb2_grpc: ModuleType, service: str) -> ServiceSpec:
        """Build from the generated modules: ``ServiceSpec.of(s, orchestrator_pb2, orchestrator_pb2_grpc,
        "DebateOrchestratorService")``."""
        full_name = pb2.DESCRIPTOR.services_by_name[service].full_name
        return cls(servicer, getattr(pb2_grpc, f"add_{service}Servicer_to_server"), full_name)


class ManagedServer:
    """A started `grpc.aio.Server` with its health servicer and a graceful `stop`."""

    def __init__(
        self, server: grpc.aio.Server, health_servicer: Any, services: Sequence[str], grace_s: float
    ):
        self.server = server
        self.health = health_servicer
        self.services = list(services)
        self.grace_s = grace_s
        self._stopped = False

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.services]:
            await self.health.set(name, status)

    async def stop(self, grace_s: float | None = None) -> None:
        """Report NOT_SERVING, stop accepting calls, give in-flight calls `grace_s` seconds, cancel the rest."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace_s if grace_s is None else grace_s)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


def _credentials(config: ServerConfig) -> grpc.ServerCredentials:
    if (
        config.tls_cert_file is None or config.tls_key_file is None
    ):  # pragma: no cover - ServerConfig checks it
        raise ValueError("TLS needs tls_cert_file and tls_key_file")
    client_ca = config.tls_client_ca_file.read_bytes() if config.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(config.tls_key_file.read_bytes(), config.tls_cert_file.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


async def create_server(
    address: str, *services: ServiceSpec, config: ServerConfig | None = None
) -> tuple[ManagedServer, int]:
    """Start a gRPC server on `address` ("127.0.0.1:0" picks a free port) and return it with its port.

    Usage (inside a running event loop)::

        from services.common import ServiceSpec, ServerConfig, create_server
        from pbt.v1 import evaluator_pb2, evaluator_pb2_grpc

        spec = ServiceSpec.of(MyServicer(), evaluator_pb2, evaluator_pb2_grpc, "EvaluatorService")
        server, port = await create_server("0.0.0.0:50052", spec, config=ServerConfig.from_env())
        ...
        await server.stop()          # or: await serve_until_signal(server)

    Servicers raise `pbt.errors` exceptions; the interceptor maps them to status codes. Health
    reports SERVING for "" and for each service name until `stop`.
    """
    config = config or ServerConfig()
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if config.auth_tokens:
        interceptors.append(BearerTokenInterceptor([t.get_secret_value() for t in config.auth_tokens]))
    interceptors.append(ErrorMappingInterceptor())
    options = [
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(
        interceptors=interceptors, options=options, maximum_concurrent_rpcs=config.max_concurrent_rpcs
    )
    for spec in services:
        spec.add_to_server(spec.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [spec.name for spec in services]
    if config.reflection:
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = (
        server.add_secure_port(address, _credentials(config))
        if config.tls
        else server.add_insecure_port(address)
    )
    if port == 0:
        raise OSError(f"cannot bind gRPC server to {address}")
    await server.start()
    managed = ManagedServer(server, health_servicer, names, config.grace_s)
    await managed.set_serving(True)
    log.info(
        "gRPC server on port %d (%s; tls=%s, auth=%s)",
        port,
        ", ".join(names),
        config.tls,
        bool(config.auth_tokens),
    )
    return managed, port


async def serve_until_signal(
    server: ManagedServer, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)
) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully (health NOT_SERVING, grace, cancel)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(server.wait_for_termination())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        log.info("signal received: shutting down with %.1fs grace", server.grace_s)
        await server.stop()
    for task in (waiter, stopper):
        task.cancel()
    for sig in signals:
        loop.remove_signal_handler(sig)
