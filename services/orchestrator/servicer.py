"""`pbt.v1.DebateOrchestratorService`: a thin adapter from gRPC to `pbt.orchestrate` and `pbt.debate`.

Validation errors name the request field (``config.tree.max_turns``, ``shard``); the shared
interceptor (`services.common.errors`) maps the project's exceptions to status codes. A cancelled
call (deadline, client gone, server shutdown) cancels the job's requests; trees already written
stay and no partial tree is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import grpc
from pydantic import ValidationError as PydanticValidationError

from pbt.backends.base import ChatBackend
from pbt.config import AgentConfig, RunConfig, SamplingConfig, StoreConfig, proto_to_dict
from pbt.datasets import Shard
from pbt.debate import DebateAgent, DebateResult, llm_extractor, rules_extractor, run_debate
from pbt.errors import NotFoundError, ValidationError
from pbt.orchestrate import JobStarted, Progress, Summary, TreeBuilt, TreeJob, tree_key
from pbt.orchestrate.agents import BackendFactory, default_backend_factory
from pbt.orchestrate.job import check_job_id
from pbt.orchestrate.preferences import PREF_MODES, extract_preferences
from pbt.store import ObjectStore
from pbt.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.orchestrator.policy import ServerPolicy

log = logging.getLogger(__name__)


def _pydantic_to_ours(exc: PydanticValidationError, prefix: str) -> ValidationError:
    err = exc.errors()[0]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
    return ValidationError(err["msg"].removeprefix("Value error, "), field=f"{prefix}{path}".rstrip("."))


def agent_config(spec: common_pb2.AgentSpec, field: str) -> AgentConfig:
    """An `AgentSpec` message as an `AgentConfig`; errors name ``field.endpoint`` etc."""
    try:
        return AgentConfig.model_validate(proto_to_dict(spec))
    except PydanticValidationError as exc:
        raise _pydantic_to_ours(exc, f"{field}.") from None


def store_config(spec: common_pb2.StoreSpec, field: str = "store") -> StoreConfig:
    try:
        return StoreConfig.model_validate(proto_to_dict(spec))
    except PydanticValidationError as exc:
        raise _pydantic_to_ours(exc, f"{field}.") from None


def progress_pb(p: Progress) -> orchestrator_pb2.BuildProgress:
    return orchestrator_pb2.BuildProgress(
        trees_done=p.trees_done,
        trees_total=p.trees_total,
        trees_skipped=p.trees_skipped,
        nodes=p.nodes,
        usage=common_pb2.Usage(prompt_tokens=p.prompt_tokens, completion_tokens=p.completion_tokens),
        elapsed_s=p.elapsed_s,
        nodes_per_second=p.nodes_per_second,
        trees_per_second=p.trees_per_second,
        eta_s=p.eta_s,
        errors=p.errors,
    )


def event_pb(event: Any) -> orchestrator_pb2.BuildTreesResponse:
    if isinstance(event, JobStarted):
        return orchestrator_pb2.BuildTreesResponse(
            started=orchestrator_pb2.JobStarted(
                job_id=event.job_id,
                trees_total=event.trees_total,
                trees_skipped=event.trees_skipped,
                output_uri=event.output_uri,
            )
        )
    if isinstance(event, TreeBuilt):
        return orchestrator_pb2.BuildTreesResponse(
            tree=orchestrator_pb2.TreeBuilt(question_id=event.question_id, nodes=event.nodes, uri=event.uri)
        )
    if isinstance(event, Progress):
        return orchestrator_pb2.BuildTreesResponse(progress=progress_pb(event))
    if isinstance(event, Summary):
        return orchestrator_pb2.BuildTreesResponse(
            summary=orchestrator_pb2.BuildSummary(
                job_id=event.job_id,
                output_uri=event.output_uri,
                manifest_uri=event.manifest_uri,
                progress=progress_pb(event.progress),
            )
        )
    raise TypeError(f"unknown event {event!r}")


def debate_pb(result: DebateResult) -> orchestrator_pb2.RunDebateResponse:
    turns = [
        orchestrator_pb2.DebateTurn(
            index=t.index,
            round=t.round,
            agent=t.agent,
            text=t.text,
            answer=t.answer,
            messages=[common_pb2.ChatMessage(role=m["role"], content=m["content"]) for m in t.messages],
            usage=common_pb2.Usage(prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens),
        )
        for t in result.turns
    ]
    finals = []
    for name, answer in result.final_answers.items():
        final = orchestrator_pb2.FinalAnswer(agent=name, answer=answer)
        if result.correct is not None:
            final.correct = result.correct[name]
        finals.append(final)
    return orchestrator_pb2.RunDebateResponse(
        turns=turns,
        final_answers=finals,
        agreed=result.agreed,
        usage=common_pb2.Usage(
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens
        ),
    )


class DebateOrchestratorServicer(orchestrator_pb2_grpc.DebateOrchestratorServiceServicer):
    """Serves the orchestrator API.

    Args:
        store: the default object store (a request's ``store`` overrides it).
        backend_factory: builds a backend per agent (default: `pbt.backends.make_backend`); tests
            inject scripted backends here.
        progress_interval_s: how often BuildTrees streams a progress event.
        policy: which endpoints and paths requests may use (`ServerPolicy`; default: http(s)
            agents only, any path).
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        backend_factory: BackendFactory | None = None,
        progress_interval_s: float = 1.0,
        policy: ServerPolicy | None = None,
    ):
        self.store = store
        # an injected factory decides itself what it builds; the default one obeys the policy
        self._check_endpoints = backend_factory is None
        self.backend_factory = backend_factory or default_backend_factory
        self.progress_interval_s = progress_interval_s
        self.policy = policy or ServerPolicy()

    def _backend(self, field_path: str, role: str, agent: AgentConfig) -> ChatBackend:
        """A backend for one agent, within the server policy; errors name ``field_path.endpoint``."""
        if self._check_endpoints:
            self.policy.check_endpoint(agent.endpoint, f"{field_path}.endpoint")
        try:
            return self.backend_factory(role, agent)
        except ValidationError as exc:
            raise ValidationError(exc.message, field=f"{field_path}.endpoint") from None

    async def _store(self, config: StoreConfig, field_path: str = "store") -> ObjectStore:
        if not config.endpoint:
            self.policy.check_path(config.url, f"{field_path}.url")
        return await asyncio.to_thread(config.open, self.store)

    async def BuildTrees(
        self, request: orchestrator_pb2.BuildTreesRequest, context: grpc.aio.ServicerContext
    ):  # noqa: N802
        if not request.HasField("config"):
            raise ValidationError("a run configuration is required", field="config")
        # paths are checked before anything reads them
        self.policy.check_path(request.config.dataset.path, "config.dataset.path")
        self.policy.check_path(request.config.personas.file, "config.personas.file")
        config = RunConfig.from_proto(request.config)
        if config.dataset is None:
            raise ValidationError("a dataset is required to build trees", field="config.dataset")
        shard = Shard.parse(request.shard, field="shard")
        if request.limit < 0:
            raise ValidationError(f"must be >= 0, got {request.limit}", field="limit")
        if request.job_id:
            check_job_id(request.job_id)
        store = await self._store(config.store, "config.store")
        job = TreeJob(
            config,
            store,
            job_id=request.job_id or None,
            shard=shard,
            limit=request.limit or None,
            backend_factory=lambda role, agent: self._backend(f"config.agents.{role}", role, agent),
            progress_interval_s=self.progress_interval_s,
            field_prefix="config.",
        )
        async for event in job.events():
            yield event_pb(event)

    async def GetTree(self, request: orchestrator_pb2.GetTreeRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        check_job_id(request.job_id)
        check_job_id(request.question_id, field="question_id")  # the same safe character set
        store = await self._store(store_config(request.store))
        key = tree_key(request.job_id, request.question_id)
        try:
            text = await asyncio.to_thread(store.get_text, key)
        except NotFoundError:
            raise NotFoundError(
                f"no tree for question {request.question_id!r} in job {request.job_id!r}"
            ) from None
        nodes = len(json.loads(text).get("nodes", []))
        return orchestrator_pb2.GetTreeResponse(uri=store.uri(key), tree_json=text.strip(), node_count=nodes)

    async def RunDebate(self, request: orchestrator_pb2.RunDebateRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        if len(request.agents) < 2:
            raise ValidationError(
                f"a debate needs at least 2 agents, got {len(request.agents)}", field="agents"
            )
        configs = [agent_config(a.agent, f"agents[{i}].agent") for i, a in enumerate(request.agents)]
        mode = request.extraction.mode
        use_llm = mode != orchestrator_pb2.EXTRACTION_MODE_RULES
        if use_llm and not request.HasField("extractor"):
            raise ValidationError("needed unless extraction.mode is EXTRACTION_MODE_RULES", field="extractor")
        sampling = proto_to_dict(request.sampling)
        try:
            params = SamplingConfig.model_validate({"temperature": 0.0, "min_tokens": 0, **sampling}).params()
        except PydanticValidationError as exc:
            raise _pydantic_to_ours(exc, "sampling.") from None
        backends = []
        try:
            agents = []
            for i, (spec, config) in enumerate(zip(request.agents, configs, strict=True)):
                backend = self._backend(f"agents[{i}].agent", f"agents[{i}]", config)
                backends.append(backend)
                agents.append(DebateAgent(spec.name, backend, merge_consecutive=config.merge_consecutive))
            if use_llm:
                extractor = self._backend(
                    "extractor", "extractor", agent_config(request.extractor, "extractor")
                )
                backends.append(extractor)
                max_tokens = (
                    request.extraction.max_tokens if request.extraction.HasField("max_tokens") else 15
                )
                extract = llm_extractor(extractor, max_tokens)
            else:
                extract = rules_extractor()
            result = await run_debate(
                request.question,
                agents,
                extract=extract,
                max_turns=request.max_turns if request.HasField("max_turns") else 4,
                sampling=params,
                instruction=request.instruction or None,
                gold=list(request.gold_answers) or None,
            )
        finally:
            for backend in backends:
                await backend.aclose()
        return debate_pb(result)

    async def ExtractPreferences(  # noqa: N802
        self, request: orchestrator_pb2.ExtractPreferencesRequest, context: grpc.aio.ServicerContext
    ):
        check_job_id(request.job_id)
        store = await self._store(store_config(request.store))
        seed = request.seed if request.HasField("seed") else 0
        out = await asyncio.to_thread(
            extract_preferences,
            store,
            request.job_id,
            output_id=request.output_id or None,
            seed=seed,
            pair_filter=request.pair_filter or None,
            fractions=list(request.split_fractions) or None,
            pbt_balance=request.pbt_balance or None,
            pair_agents=request.pair_agents or None,
        )
        return orchestrator_pb2.ExtractPreferencesResponse(
            output_uri=out.output_uri,
            manifest_uri=out.manifest_uri,
            trees_read=out.trees_read,
            pairs=out.counts["pairs_found"],
            accept_pairs=out.counts["accept"],
            resist_pairs=out.counts["resist"],
            pbt_pairs=out.counts["pbt"],
            counts={k: int(v) for k, v in out.counts.items()},
            manifest_json=json.dumps(out.manifest, sort_keys=True),
        )


__all__ = ["DebateOrchestratorServicer", "PREF_MODES", "agent_config", "event_pb"]
