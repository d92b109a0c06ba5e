"""`EvaluatorService`: RunEvaluation streams progress while `pbt.evaluate.run_evaluation` works."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from pbt.backends.factory import BackendFactory
from pbt.config import StoreConfig
from pbt.errors import ConflictError, ValidationError
from pbt.evaluate import results as R
from pbt.evaluate.config import EvalConfig
from pbt.evaluate.runner import ProgressEvent, run_evaluation
from pbt.orchestrate.job import check_job_id
from pbt.rpc.convert import eval_config_from_request, summary_to_proto
from pbt.store import ObjectStore, open_store
from pbt.v1 import evaluator_pb2 as pb
from pbt.v1 import evaluator_pb2_grpc as pb_grpc
from services.common.policy import RequestPolicy

log = logging.getLogger(__name__)

_DONE = object()


class EvaluatorServicer(pb_grpc.EvaluatorServiceServicer):
    """Runs evaluations in the server's event loop; one run per eval_id at a time.

    `store` is the server's store (default: `open_store()` from the environment; a request may
    only pick a prefix inside it); `backend_factory` builds agent backends (default:
    `make_backend` with the policy's credentials); `policy` (`RequestPolicy`) says which agents,
    files and stores requests may use (default: no agents, no files, no local backends).
    """

    def __init__(
        self,
        store: ObjectStore | None = None,
        backend_factory: BackendFactory | None = None,
        policy: RequestPolicy | None = None,
    ):
        self._default_store = store
        self.policy = policy or RequestPolicy()
        self._make = self.policy.backend_factory(backend_factory)
        self._running: set[str] = set()

    @property
    def default_store(self) -> ObjectStore:
        if self._default_store is None:
            self._default_store = open_store()
        return self._default_store

    def _store(self, spec: StoreConfig, field: str = "store") -> ObjectStore:
        return self.policy.open_store(spec, self.default_store, field)

    def _checked(self, config: EvalConfig, prefix: str) -> tuple[EvalConfig, BackendFactory]:
        """The config with its agents resolved by the policy, its files checked, and the factory
        that builds the agents with the operator's credentials."""
        policy = self.policy
        policy.check_path(config.personas, f"{prefix}personas")
        suites = config.suites
        if suites.misinformation is not None:
            for i, f in enumerate(suites.misinformation.files):
                policy.check_path(f, f"{prefix}suites.misinformation.files[{i}]")
        for name, attr in (
            ("are_you_sure", "questions"), ("balanced", "pairs"), ("balanced", "trees"), ("team_debate", "questions"),
        ):  # fmt: skip
            suite = getattr(suites, name)
            if suite is not None:
                policy.check_path(getattr(suite, attr), f"{prefix}suites.{name}.{attr}", store_key_ok=True)
        keys: dict[str, str | None] = {}
        models = []
        for i, model in enumerate(config.models):
            resolved, key = policy.resolve_agent(model, f"{prefix}models[{i}]")
            models.append(resolved)
            keys[resolved.endpoint] = key
        extractor = config.extractor
        if extractor.agent is not None:
            agent, key = policy.resolve_agent(extractor.agent, f"{prefix}extractor.agent")
            keys[agent.endpoint] = key
            extractor = extractor.model_copy(update={"agent": agent})
        config = config.model_copy(update={"models": models, "extractor": extractor})

        def factory(role: str, agent: Any) -> Any:
            return self._make(role, agent, keys.get(agent.endpoint))

        return config, factory

    async def RunEvaluation(
        self, request: pb.RunEvaluationRequest, context: Any
    ) -> AsyncIterator[pb.RunEvaluationResponse]:
        if request.WhichOneof("source") is None:
            raise ValidationError("give config or config_yaml", field="source")
        prefix = "config." if request.WhichOneof("source") == "config" else ""
        config, factory = self._checked(eval_config_from_request(request), prefix)
        store = self._store(config.store, f"{prefix}store")
        if config.eval_id in self._running:
            raise ConflictError(f"evaluation {config.eval_id!r} is already running on this server")
        queue: asyncio.Queue = asyncio.Queue()

        def on_start(info: dict[str, Any]) -> None:
            queue.put_nowait(
                pb.RunEvaluationResponse(
                    started=pb.EvaluationStarted(
                        eval_id=info["eval_id"], results_uri=info["results_uri"], suites=info["suites"]
                    )
                )
            )

        def on_progress(ev: ProgressEvent) -> None:
            queue.put_nowait(
                pb.RunEvaluationResponse(
                    progress=pb.SuiteProgress(
                        suite=ev.suite, done=ev.done, total=ev.total, skipped=ev.skipped
                    )
                )
            )

        async def work() -> dict[str, Any]:
            try:
                return await run_evaluation(
                    config,
                    store=store,
                    progress=on_progress,
                    on_start=on_start,
                    backend_factory=factory,
                )
            finally:
                queue.put_nowait(_DONE)

        self._running.add(config.eval_id)
        task = asyncio.create_task(work())
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                yield item
            doc = await task  # raises the run's error (mapped to a status by the interceptor)
            report = (
                store.get_text(R.report_key(config.eval_id))
                if store.exists(R.report_key(config.eval_id))
                else ""
            )
            yield pb.RunEvaluationResponse(summary=summary_to_proto(doc, report))
        finally:
            if not task.done():  # client cancelled or deadline passed: stop; finished records stay
                task.cancel()
                try:
                    await task
                except BaseException:  # noqa: BLE001 - the cancellation itself
                    pass
            self._running.discard(config.eval_id)

    async def GetEvaluation(self, request: pb.GetEvaluationRequest, context: Any) -> pb.GetEvaluationResponse:
        check_job_id(request.eval_id, field="eval_id")  # the same id rule as EvalConfig.eval_id
        spec = StoreConfig(
            url=request.store.url or None,
            endpoint=request.store.endpoint or None,
            secure=request.store.secure if request.store.HasField("secure") else None,
        )
        store = self._store(spec)
        doc = R.load_summary(store, request.eval_id)  # NotFoundError -> NOT_FOUND
        key = R.report_key(request.eval_id)
        report = store.get_text(key) if store.exists(key) else ""
        return pb.GetEvaluationResponse(summary=summary_to_proto(doc, report))
