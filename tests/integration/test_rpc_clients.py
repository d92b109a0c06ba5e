"""`pbt.rpc` clients against the real servers on loopback: the token goes with every call, library
configs cross the wire through the mapping, and a shared channel stays open."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pbt.config import RunConfig
from pbt.rpc import EvaluatorClient, OrchestratorClient, open_channel
from pbt.store import LocalStore
from services.common import ServerConfig
from services.evaluator.server import start_evaluator
from services.evaluator.servicer import EvaluatorServicer
from services.orchestrator.server import start_orchestrator

pytestmark = pytest.mark.integration

TOKEN = "s3cret"


async def _code(awaitable) -> grpc.StatusCode:
    try:
        await awaitable
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_clients_send_the_token(tmp_path):
    async def main() -> None:
        config = ServerConfig(auth_tokens=[TOKEN])
        store = LocalStore(tmp_path)
        orch, orch_port = await start_orchestrator(store=store, config=config)
        ev, ev_port = await start_evaluator("127.0.0.1:0", EvaluatorServicer(store=store), config)
        try:
            async with EvaluatorClient(f"127.0.0.1:{ev_port}") as anonymous:
                assert (
                    await _code(anonymous.get_evaluation("none", timeout=5))
                    == grpc.StatusCode.UNAUTHENTICATED
                )
            async with EvaluatorClient(f"127.0.0.1:{ev_port}", token=TOKEN) as evaluator:
                assert await _code(evaluator.get_evaluation("none", timeout=5)) == grpc.StatusCode.NOT_FOUND
            async with OrchestratorClient(f"127.0.0.1:{orch_port}") as anonymous:
                code = await _code(anonymous.extract_preferences(job_id="none", timeout=5))
                assert code == grpc.StatusCode.UNAUTHENTICATED
            async with OrchestratorClient(f"127.0.0.1:{orch_port}", token=TOKEN) as orchestrator:
                code = await _code(orchestrator.extract_preferences(job_id="none", timeout=5))
                assert code == grpc.StatusCode.NOT_FOUND
        finally:
            await orch.stop(0)
            await ev.stop(0)

    asyncio.run(main())


def test_build_trees_sends_the_run_config(tmp_path):
    """A config the server refuses comes back as INVALID_ARGUMENT naming the request field, so the
    config went through `run_config_to_proto` and the server's `run_config_from_proto`."""

    async def main() -> None:
        orch, port = await start_orchestrator(store=LocalStore(tmp_path))
        config = RunConfig.from_dict(
            {
                "agents": {"a": {"endpoint": "local:/nonexistent"}, "b": {"endpoint": "local:/nonexistent"}},
                "dataset": {
                    "format": "inline",
                    "questions": [{"id": "q1", "question": "?", "answers": ["x"]}],
                },
                "extraction": {"mode": "rules"},
            }
        )
        try:
            async with open_channel(f"127.0.0.1:{port}") as channel:
                client = OrchestratorClient(f"127.0.0.1:{port}", channel=channel)
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    _ = [event async for event in client.build_trees(config, job_id="c1", timeout=30)]
                await client.close()
                assert channel.get_state() != grpc.ChannelConnectivity.SHUTDOWN
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "config.agents" in (info.value.details() or "")
        finally:
            await orch.stop(0)

    asyncio.run(main())


def test_run_evaluation_takes_one_source():
    async def main() -> None:
        async with EvaluatorClient("127.0.0.1:9") as evaluator:
            with pytest.raises(ValueError, match="exactly one"):
                evaluator.run_evaluation()
            with pytest.raises(ValueError, match="exactly one"):
                evaluator.run_evaluation(config_yaml="x: 1", config=object())  # type: ignore[arg-type]

    asyncio.run(main())
