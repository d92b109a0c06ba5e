"""Starting the evaluator gRPC server with the shared infrastructure (`services.common`)."""

from __future__ import annotations

from services.common import ManagedServer, ServerConfig, ServiceSpec, create_server
from services.evaluator.servicer import EvaluatorServicer


async def start_evaluator(
    address: str = "127.0.0.1:0",
    servicer: EvaluatorServicer | None = None,
    config: ServerConfig | None = None,
) -> tuple[ManagedServer, int]:
    """Start `pbt.v1.EvaluatorService` (+ health, reflection, error mapping, auth) on `address`."""
    from pbt.v1 import evaluator_pb2, evaluator_pb2_grpc

    spec = ServiceSpec.of(
        servicer or EvaluatorServicer(), evaluator_pb2, evaluator_pb2_grpc, "EvaluatorService"
    )
    return await create_server(address, spec, config=config or ServerConfig.from_env())
