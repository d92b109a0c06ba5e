"""Typed asyncio clients of the orchestrator and evaluator services.

Each client owns one channel (`open_channel`: TLS and bearer-token options) and takes library
objects where the library has them (`RunConfig`, `EvalConfig`); other requests are built from
keyword arguments named as the proto fields::

    async with OrchestratorClient("127.0.0.1:50051", token=token) as orchestrator:
        async for event in orchestrator.build_trees(config, job_id="nq-1"):
            ...
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from pbt.config import RunConfig
from pbt.errors import PbtError
from pbt.evaluate.config import EvalConfig
from pbt.rpc.channel import open_channel
from pbt.rpc.convert import eval_config_to_proto, run_config_to_proto
from pbt.v1 import evaluator_pb2, evaluator_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc


class _Client:
    _stub_class: Any

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls: bool = False,
        tls_ca_file: str | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self.address = address
        self._owns_channel = channel is None
        self.channel = channel or open_channel(address, token=token, tls=tls, tls_ca_file=tls_ca_file)
        self.stub = self._stub_class(self.channel)

    async def close(self) -> None:
        if self._owns_channel:
            await self.channel.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class OrchestratorClient(_Client):
    """``pbt.v1.DebateOrchestratorService``."""

    _stub_class = orchestrator_pb2_grpc.DebateOrchestratorServiceStub

    def build_trees(
        self,
        config: RunConfig,
        *,
        job_id: str = "",
        shard: str = "",
        limit: int | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[orchestrator_pb2.BuildTreesResponse]:
        """The job's event stream (started, tree, progress, summary); `limit`: questions, None = all."""
        request = orchestrator_pb2.BuildTreesRequest(
            config=run_config_to_proto(config), job_id=job_id, shard=shard, limit=limit or 0
        )
        return self.stub.BuildTrees(request, timeout=timeout)

    async def get_tree(
        self, *, timeout: float | None = None, **fields: Any
    ) -> orchestrator_pb2.GetTreeResponse:
        return await self.stub.GetTree(orchestrator_pb2.GetTreeRequest(**fields), timeout=timeout)

    async def run_debate(
        self, request: orchestrator_pb2.RunDebateRequest, *, timeout: float | None = None
    ) -> orchestrator_pb2.RunDebateResponse:
        return await self.stub.RunDebate(request, timeout=timeout)

    async def extract_preferences(
        self, *, timeout: float | None = None, **fields: Any
    ) -> orchestrator_pb2.ExtractPreferencesResponse:
        request = orchestrator_pb2.ExtractPreferencesRequest(**fields)
        return await self.stub.ExtractPreferences(request, timeout=timeout)


class EvaluatorClient(_Client):
    """``pbt.v1.EvaluatorService``."""

    _stub_class = evaluator_pb2_grpc.EvaluatorServiceStub

    def run_evaluation(
        self,
        config: EvalConfig | None = None,
        *,
        config_yaml: str | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[evaluator_pb2.RunEvaluationResponse]:
        """The evaluation's event stream (progress, summary), from a config or its YAML text."""
        if (config is None) == (config_yaml is None):
            raise ValueError("give exactly one of config and config_yaml")
        if config is not None:
            request = evaluator_pb2.RunEvaluationRequest(config=eval_config_to_proto(config))
        else:
            request = evaluator_pb2.RunEvaluationRequest(config_yaml=config_yaml)
        return self.stub.RunEvaluation(request, timeout=timeout)

    async def run_to_summary(
        self,
        config: EvalConfig | None = None,
        *,
        config_yaml: str | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
        timeout: float | None = None,
    ) -> evaluator_pb2.EvaluationSummary:
        """Run an evaluation to its end: its `EvaluationSummary`; progress events go to
        ``on_progress(suite, done, total)``. A failed call is a `PbtError` naming the server."""
        summary = None
        try:
            async for event in self.run_evaluation(config, config_yaml=config_yaml, timeout=timeout):
                kind = event.WhichOneof("event")
                if kind == "progress" and on_progress is not None:
                    on_progress(event.progress.suite, event.progress.done, event.progress.total)
                elif kind == "summary":
                    summary = event.summary
        except grpc.aio.AioRpcError as exc:
            raise PbtError(f"{self.address}: {exc.code().name}: {exc.details()}") from None
        if summary is None:
            raise PbtError(f"{self.address}: the stream ended without a summary")
        return summary

    async def evaluate(
        self,
        config: EvalConfig,
        *,
        on_progress: Callable[[str, int, int], None] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """`run_to_summary` as the summary document (``summary.json``)."""
        summary = await self.run_to_summary(config, on_progress=on_progress, timeout=timeout)
        return json.loads(summary.summary_json)

    async def get_evaluation(
        self, eval_id: str, *, timeout: float | None = None, **fields: Any
    ) -> evaluator_pb2.GetEvaluationResponse:
        request = evaluator_pb2.GetEvaluationRequest(eval_id=eval_id, **fields)
        return await self.stub.GetEvaluation(request, timeout=timeout)
