"""Both gRPC services on loopback with one store and one request policy, for tests that send the
same hostile requests to each (the fuzz table, the secret-leak checks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from pbt.rpc import open_channel
from pbt.store import ObjectStore
from pbt.v1 import evaluator_pb2_grpc, orchestrator_pb2_grpc
from services.common.policy import RequestPolicy
from services.evaluator.server import start_evaluator
from services.evaluator.servicer import EvaluatorServicer
from services.orchestrator.server import start_orchestrator


@dataclass
class Servers:
    orch_channel: grpc.aio.Channel
    eval_channel: grpc.aio.Channel
    stubs: dict[str, Any]  # "orch" / "eval"


@asynccontextmanager
async def both_servers(store: ObjectStore, policy: RequestPolicy) -> AsyncIterator[Servers]:
    orch, orch_port = await start_orchestrator(store=store, policy=policy)
    ev, ev_port = await start_evaluator("127.0.0.1:0", EvaluatorServicer(store=store, policy=policy))
    try:
        async with (
            open_channel(f"127.0.0.1:{orch_port}") as oc,
            open_channel(f"127.0.0.1:{ev_port}") as ec,
        ):
            yield Servers(
                oc,
                ec,
                {
                    "orch": orchestrator_pb2_grpc.DebateOrchestratorServiceStub(oc),
                    "eval": evaluator_pb2_grpc.EvaluatorServiceStub(ec),
                },
            )
    finally:
        await orch.stop(0)
        await ev.stop(0)


async def outcome(call: Any, request: Any, timeout: float = 60) -> tuple[grpc.StatusCode, str]:
    """Run a unary or streaming call (a stub's method, or a raw channel callable) to the end; its
    status code and details (OK, "")."""
    try:
        reply = call(request, timeout=timeout)
        if hasattr(reply, "__aiter__"):
            _ = [event async for event in reply]
        else:
            await reply
        return grpc.StatusCode.OK, ""
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
