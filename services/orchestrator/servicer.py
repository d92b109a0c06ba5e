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
from pbt.backends.factory import BackendFactory
from pbt.config import AgentConfig, SamplingConfig, StoreConfig
from pbt.datasets import Shard
from pbt.debate import DebateAgent, DebateResult, llm_extractor, rules_extractor, run_debate
from pbt.errors import NotFoundError, ValidationError, from_pydantic, shorten
from pbt.orchestrate import JobStarted, Progress, Summary, TreeBuilt, TreeJob, tree_key
from pbt.orchestrate.job import check_job_id
from pbt.orchestrate.preferences import PREF_MODES, extract_preferences
from pbt.rpc.convert import proto_to_dict, run_config_from_proto
from pbt.safeload import loads_json
from pbt.store import ObjectStore
from pbt.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.common.policy import RequestPolicy

log = logging.getLogger(__name__)


def agent_config(spec: common_pb2.AgentSpec, field: str) -> AgentConfig:
    """An `AgentSpec` message as an `AgentConfig`; errors name ``field.endpoint`` etc."""
    try:
        return AgentConfig.model_validate(proto_to_dict(spec))
    except PydanticValidationError as exc:
        raise from_pydantic(exc, prefix=f"{field}.") from None


def store_config(spec: common_pb2.StoreSpec, field: str = "store") -> StoreConfig:
    try:
        return StoreConfig.model_validate(proto_to_dict(spec))
    except PydanticValidationError as exc:
        raise from_pydantic(exc, prefix=f"{field}.") from None


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
            tree=orchestrator_pb2.TreeBuilt(tree_id=event.tree_id, nodes=event.nodes, uri=event.uri)
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
        store: the server's object store (a request may only pick a prefix inside it).
        backend_factory: builds a backend per agent (default: `pbt.backends.make_backend` with the
            policy's credentials); tests inject scripted backends here. Either way agents are
            resolved and checked by the policy first.
        progress_interval_s: how often BuildTrees streams a progress event.
        policy: what requests may use (`services.common.policy.RequestPolicy`; default: no agents,
            no files, no local backends).
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        backend_factory: BackendFactory | None = None,
        progress_interval_s: float = 1.0,
        policy: RequestPolicy | None = None,
    ):
        self.store = store
        self.policy = policy or RequestPolicy()
        self._make = self.policy.backend_factory(backend_factory)
        self.progress_interval_s = progress_interval_s

    def _backend(
        self, field_path: str, role: str, agent: AgentConfig, api_key: str | None = None
    ) -> ChatBackend:
        """A backend for an agent the policy resolved; errors name ``field_path.endpoint``."""
        try:
            return self._make(role, agent, api_key)
        except ValidationError as exc:
            raise ValidationError(exc.message, field=f"{field_path}.endpoint") from None

    def _store(self, config: StoreConfig, field_path: str = "store") -> ObjectStore:
        return self.policy.open_store(config, self.store, field_path)

    async def BuildTrees(
        self, request: orchestrator_pb2.BuildTreesRequest, context: grpc.aio.ServicerContext
    ):  # noqa: N802
        if not request.HasField("config"):
            raise ValidationError("a run configuration is required", field="config")
        # paths, agents and the store are checked before anything reads, calls or writes them
        self.policy.check_path(request.config.dataset.path, "config.dataset.path")
        self.policy.check_path(request.config.personas.file, "config.personas.file")
        store = self._store(store_config(request.config.store), "config.store")
        config = run_config_from_proto(request.config)
        if config.dataset is None:
            raise ValidationError("a dataset is required to build trees", field="config.dataset")
        resolved, keys = {}, {}
        for role in ("a", "b", "extractor"):
            agent = getattr(config.agents, role)
            if agent is not None:
                resolved[role], keys[role] = self.policy.resolve_agent(agent, f"config.agents.{role}")
        config = config.model_copy(update={"agents": config.agents.model_copy(update=resolved)})
        self.policy.check_tree(config.branching(), "config.tree")
        shard = Shard.parse(request.shard, field="shard")
        if request.limit < 0:
            raise ValidationError(f"must be >= 0, got {request.limit}", field="limit")
        if request.job_id:
            check_job_id(request.job_id)
        job = TreeJob(
            config,
            store,
            job_id=request.job_id or None,
            shard=shard,
            limit=request.limit or None,
            backend_factory=lambda role, agent: self._backend(
                f"config.agents.{role}", role, agent, keys.get(role)
            ),
            progress_interval_s=self.progress_interval_s,
            field_prefix="config.",
        )
        async for event in job.events():
            yield event_pb(event)

    async def GetTree(self, request: orchestrator_pb2.GetTreeRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        check_job_id(request.job_id)
        check_job_id(request.tree_id, field="tree_id")  # the same safe character set
        store = self._store(store_config(request.store))
        key = tree_key(request.job_id, request.tree_id)
        try:
            text = await asyncio.to_thread(store.get_text, key)
        except NotFoundError:
            raise NotFoundError(f"no tree {request.tree_id!r} in job {request.job_id!r}") from None
        tree = loads_json(text, store.uri(key))
        nodes = tree.get("nodes") if isinstance(tree, dict) else None
        if not isinstance(nodes, list):
            raise ValidationError("the stored tree is damaged (no list of nodes)", location=store.uri(key))
        nodes = len(nodes)
        return orchestrator_pb2.GetTreeResponse(uri=store.uri(key), tree_json=text.strip(), node_count=nodes)

    async def RunDebate(self, request: orchestrator_pb2.RunDebateRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        if not 2 <= len(request.agents) <= self.policy.max_debate_agents:
            raise ValidationError(
                f"a debate needs 2 to {self.policy.max_debate_agents} agents, got {len(request.agents)}",
                field="agents",
            )
        names = [a.name for a in request.agents]
        for i, name in enumerate(names):
            if not name.strip() or len(name) > 64 or names.index(name) != i:
                raise ValidationError(
                    f"agent names must be non-empty, unique and at most 64 characters, got {shorten(name)}",
                    field=f"agents[{i}].name",
                )
        if not request.question.strip():
            raise ValidationError("a question is required", field="question")
        if request.HasField("total_turns"):
            if request.HasField("max_turns"):
                raise ValidationError("set at most one of max_turns and total_turns", field="total_turns")
            # the reference's reading: every turn counts, the independent answers included
            agents_n = len(request.agents)
            if not agents_n + 1 <= request.total_turns <= agents_n + self.policy.max_debate_turns:
                raise ValidationError(
                    f"must be {agents_n + 1}..{agents_n + self.policy.max_debate_turns} "
                    f"(the {agents_n} independent answers and at least one discussion turn), "
                    f"got {request.total_turns}",
                    field="total_turns",
                )
            max_turns = request.total_turns - agents_n
        else:
            max_turns = request.max_turns if request.HasField("max_turns") else 4
        if not 1 <= max_turns <= self.policy.max_debate_turns:
            raise ValidationError(
                f"must be 1..{self.policy.max_debate_turns}, got {max_turns}", field="max_turns"
            )
        mode = request.extraction.mode
        if mode not in orchestrator_pb2.ExtractionMode.values():
            raise ValidationError(f"unknown extraction mode {mode}", field="extraction.mode")
        if request.extraction.HasField("max_tokens") and not 1 <= request.extraction.max_tokens <= 256:
            raise ValidationError(
                f"must be 1..256, got {request.extraction.max_tokens}", field="extraction.max_tokens"
            )
        configs = [
            self.policy.resolve_agent(agent_config(a.agent, f"agents[{i}].agent"), f"agents[{i}].agent")
            for i, a in enumerate(request.agents)
        ]
        use_llm = mode != orchestrator_pb2.EXTRACTION_MODE_RULES
        if use_llm and not request.HasField("extractor"):
            raise ValidationError("needed unless extraction.mode is EXTRACTION_MODE_RULES", field="extractor")
        sampling = proto_to_dict(request.sampling)
        try:
            params = SamplingConfig.model_validate({"temperature": 0.0, "min_tokens": 0, **sampling}).params()
        except PydanticValidationError as exc:
            raise from_pydantic(exc, prefix="sampling.") from None
        backends = []
        try:
            agents = []
            for i, (spec, (config, key)) in enumerate(zip(request.agents, configs, strict=True)):
                backend = self._backend(f"agents[{i}].agent", f"agents[{i}]", config, key)
                backends.append(backend)
                agents.append(DebateAgent(spec.name, backend, merge_consecutive=config.merge_consecutive))
            if use_llm:
                extractor_config, key = self.policy.resolve_agent(
                    agent_config(request.extractor, "extractor"), "extractor"
                )
                extractor = self._backend("extractor", "extractor", extractor_config, key)
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
                max_turns=max_turns,
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
        store = self._store(store_config(request.store))
        seed = request.seed if request.HasField("seed") else 0
        judge = None
        judge_info = None
        if request.HasField("judge"):
            # the judge is an agent like any other: allow-listed by the operator, key from the server
            judge_config, key = self.policy.resolve_agent(agent_config(request.judge, "judge"), "judge")
            judge = self._backend("judge", "judge", judge_config, key)
            judge_info = {"endpoint": request.judge.endpoint, "model": judge_config.model}
        try:
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
                eval_filter=request.eval_pair_filter or None,
                judge=judge,
                judge_info=judge_info,
            )
        finally:
            if judge is not None:
                await judge.aclose()
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
