"""`EvaluatorService`: RunEvaluation streams progress while `pbt.evaluate.run_evaluation` works."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from pbt.config import StoreConfig
from pbt.errors import ConflictError, ValidationError
from pbt.evaluate import results as R
from pbt.evaluate.runner import BackendFactory, ProgressEvent, run_evaluation
from pbt.store import ObjectStore
from pbt.v1 import evaluator_pb2 as pb
from pbt.v1 import evaluator_pb2_grpc as pb_grpc
from services.evaluator.convert import config_from_request, summary_to_proto

log = logging.getLogger(__name__)

_DONE = object()


class EvaluatorServicer(pb_grpc.EvaluatorServiceServicer):
    """Runs evaluations in the server's event loop; one run per eval_id at a time.

    `store` is the default store (requests may name another); `backend_factory` builds agent
    backends from their specs (default: http(s)://, local:DIR, `make_backend` specs).
    """

    def __init__(self, store: ObjectStore | None = None, backend_factory: BackendFactory | None = None):
        self.default_store = store
        self.backend_factory = backend_factory
        self._running: set[str] = set()

    def _store(self, spec: StoreConfig) -> ObjectStore:
        return spec.open(default=self.default_store)

    async def RunEvaluation(
        self, request: pb.RunEvaluationRequest, context: Any
    ) -> AsyncIterator[pb.RunEvaluationResponse]:
        if request.WhichOneof("source") is None:
            raise ValidationError("give config or config_yaml", field="source")
        config = config_from_request(request)
        store = self._store(config.store)
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
                    backend_factory=self.backend_factory,
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
        if not request.eval_id:
            raise ValidationError("eval_id is required", field="eval_id")
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
