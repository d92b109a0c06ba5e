"""`pbt.rpc` clients against the real servers on loopback: the token goes with every call, library
configs cross the wire through the mapping, and a shared channel stays open."""

from __future__ import annotations

import asyncio
import json

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


def test_evaluate_runs_to_the_summary_and_reports_progress(tmp_path, data_dir):
    """`EvaluatorClient.evaluate` (what `pbt eval run --server` and the pipeline's evaluate step
    call) streams a real evaluation and returns its summary document."""
    from pbt.backends.scripted import ScriptedBackend
    from pbt.evaluate import parse_config
    from services.common.policy import RequestPolicy

    rows = [json.loads(line) for line in (data_dir / "nq_open/NQ-open.dev.jsonl").open()][:4]
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = {r["question"]: r["answer"][0] for r in rows}
    config = parse_config(
        {
            "eval_id": "client-1",
            "models": [{"name": "m", "endpoint": "scripted:m", "model": "m"}],
            "seeds": [1],
            "suites": {"are_you_sure": {"questions": str(path)}},
            "bootstrap_samples": 50,
        }
    )

    async def main() -> dict:
        servicer = EvaluatorServicer(
            store=LocalStore(tmp_path / "store"),
            backend_factory=lambda name, agent: ScriptedBackend(table, persuasion="never", name="m"),
            policy=RequestPolicy(allow_local_backends=True, data_roots=[tmp_path]),
        )
        server, port = await start_evaluator("127.0.0.1:0", servicer)
        try:
            async with EvaluatorClient(f"127.0.0.1:{port}") as evaluator:
                return await evaluator.evaluate(config, on_progress=lambda *e: progress.append(e), timeout=60)
        finally:
            await server.stop(0)

    progress: list[tuple[str, int, int]] = []
    doc = asyncio.run(main())
    assert doc["eval_id"] == "client-1" and doc["state"] == "succeeded"
    assert progress and progress[-1] == ("are_you_sure", 4, 4)


def test_evaluate_names_the_server_when_the_call_fails():
    from pbt.errors import PbtError
    from pbt.evaluate import parse_config

    config = parse_config(
        {
            "eval_id": "client-2",
            "models": [{"name": "m", "endpoint": "scripted:m"}],
            "suites": {"are_you_sure": {"questions": "q.jsonl"}},
        }
    )

    async def main() -> None:
        async with EvaluatorClient("127.0.0.1:9") as evaluator:
            await evaluator.evaluate(config, timeout=5)

    with pytest.raises(PbtError, match=r"127\.0\.0\.1:9: UNAVAILABLE"):
        asyncio.run(main())
