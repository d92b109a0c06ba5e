"""Start the orchestrator: `start_orchestrator()` (the command line runs it through `services.common.startup`)."""

from __future__ import annotations

from pbt.backends.factory import BackendFactory
from pbt.store import ObjectStore, open_store
from pbt.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from services.common import ManagedServer, ServerConfig, ServiceSpec, create_server
from services.common.policy import RequestPolicy
from services.orchestrator.servicer import DebateOrchestratorServicer

SERVICE_NAME = "DebateOrchestratorService"


async def start_orchestrator(
    address: str = "127.0.0.1:0",
    *,
    store: ObjectStore | None = None,
    config: ServerConfig | None = None,
    backend_factory: BackendFactory | None = None,
    progress_interval_s: float = 1.0,
    policy: RequestPolicy | None = None,
) -> tuple[ManagedServer, int]:
    """Start the orchestrator on `address` (port 0: a free port); returns (server, port)."""
    servicer = DebateOrchestratorServicer(
        store or open_store(),
        backend_factory=backend_factory,
        progress_interval_s=progress_interval_s,
        policy=policy,
    )
    spec = ServiceSpec.of(servicer, orchestrator_pb2, orchestrator_pb2_grpc, SERVICE_NAME)
    return await create_server(address, spec, config=config)
