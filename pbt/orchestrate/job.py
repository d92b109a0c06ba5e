"""A tree-building job: questions of a dataset shard -> one tree object per question (or per replica) in the store.

Store layout (keys relative to the store root)::

    trees/{job_id}/{tree_id}.json                            one pbt.tree/v1 tree (one JSON line); the tree id
                                                             is the question id, "<question id>-r<j>" for
                                                             replica j > 0 (`TreeConfig.trees_per_question`)
    trees/{job_id}/_manifests/shard-{i}-of-{N}.json          config, dataset, shard, counts, status

Each tree is written atomically when it is complete, so a reader (or a resumed job) never sees a
partial tree. Re-running a job id skips the questions whose tree exists, so a job killed at any
moment and restarted ends with exactly one tree per question. Reusing a job id with a different
configuration (`RunConfig.fingerprint`) is a `ConflictError`.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pbt import code_version
from pbt.backends.factory import BackendFactory
from pbt.config import DatasetConfig, RunConfig
from pbt.datasets import Shard, load_questions
from pbt.errors import ConflictError, ValidationError
from pbt.orchestrate.agents import AgentPool
from pbt.orchestrate.builder import TreeBuilder, replica_tree_id
from pbt.store import ObjectStore, layout
from pbt.store.layout import check_job_id, tree_key
from pbt.tree.io import tree_to_json_line
from pbt.tree.model import Question

log = logging.getLogger(__name__)

MANIFEST_KIND = "pbt.trees.manifest/v1"


def new_job_id() -> str:
    return f"job-{datetime.datetime.now(datetime.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def job_prefix(job_id: str) -> str:
    return layout.trees_prefix(job_id)


def manifest_key(job_id: str, shard: Shard) -> str:
    return layout.shard_manifest_key(job_id, shard.index, shard.count)


def list_tree_keys(store: ObjectStore, job_id: str) -> list[str]:
    """Keys of the finished trees of a job (manifests excluded)."""
    prefix = job_prefix(job_id)
    return [k for k in store.list(prefix) if k.endswith(".json") and "/" not in k[len(prefix) :]]


# ---- events --------------------------------------------------------------------------------
@dataclass
class JobStarted:
    job_id: str
    trees_total: int
    trees_skipped: int
    output_uri: str


@dataclass
class Progress:
    trees_done: int = 0
    trees_total: int = 0
    trees_skipped: int = 0
    nodes: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    elapsed_s: float = 0.0
    nodes_per_second: float = 0.0
    trees_per_second: float = 0.0
    eta_s: float = -1.0
    errors: int = 0


@dataclass
class TreeBuilt:
    tree_id: str
    nodes: int
    uri: str


@dataclass
class Summary:
    job_id: str
    output_uri: str
    manifest_uri: str
    progress: Progress


Event = JobStarted | Progress | TreeBuilt | Summary


@dataclass
class _State:
    started: float = field(default_factory=time.monotonic)
    built: int = 0  # trees built in this run
    nodes: int = 0


class TreeJob:
    """Build the trees of one dataset shard; iterate `events()` to run it.

    The caller owns cancellation: cancelling the iteration (a gRPC deadline, Ctrl-C) cancels every
    request in flight; trees already written stay, and no partial tree is ever written.
    """

    def __init__(
        self,
        config: RunConfig,
        store: ObjectStore,
        *,
        job_id: str | None = None,
        shard: Shard | None = None,
        limit: int | None = None,
        backend_factory: BackendFactory | None = None,
        progress_interval_s: float = 0.5,
        field_prefix: str = "",
    ):
        if config.dataset is None:
            raise ValidationError("a dataset is required to build trees", field=f"{field_prefix}dataset")
        self.dataset: DatasetConfig = config.dataset
        if limit is not None and limit < 0:
            raise ValidationError(f"must be >= 0, got {limit}", field="limit")
        self.config = config
        self.store = store
        self.job_id = check_job_id(job_id) if job_id else new_job_id()
        self.shard = shard or Shard()
        self.limit = limit or None
        self.backend_factory = backend_factory
        self.progress_interval_s = progress_interval_s
        self.field_prefix = field_prefix
        self.output_uri = store.uri(job_prefix(self.job_id).rstrip("/")) + "/"
        self.manifest_uri = store.uri(manifest_key(self.job_id, self.shard))

    # ---- manifest ----------------------------------------------------------------------------
    def _check_conflict(self) -> None:
        fingerprint = self.config.fingerprint()
        for key in self.store.list(layout.shard_manifests_prefix(self.job_id)):
            other = self.store.get_json(key)
            if other.get("fingerprint") != fingerprint:
                raise ConflictError(
                    f"job {self.job_id!r} exists with another configuration (fingerprint {other.get('fingerprint')} "
                    f"in {self.store.uri(key)}, this request {fingerprint}); use a new job id"
                )

    def _manifest(
        self, status: str, trees: int, skipped: int, progress: Progress, error: str | None = None
    ) -> dict:
        return {
            "kind": MANIFEST_KIND,
            "job_id": self.job_id,
            "status": status,
            "error": error,
            "shard": {"index": self.shard.index, "count": self.shard.count},
            "limit": self.limit,
            "dataset": {
                "format": self.dataset.format,
                "path": self.dataset.path,
                "name": self.dataset.display_name,
                "questions_in_shard": trees // self.config.tree.trees_per_question,
            },
            "counts": {
                "trees_total": trees,
                "trees_done": progress.trees_done,
                "trees_skipped": skipped,
                "trees_built_this_run": progress.trees_done - skipped,
                "nodes_this_run": progress.nodes,
                "prompt_tokens": progress.prompt_tokens,
                "completion_tokens": progress.completion_tokens,
                "failed_requests": progress.errors,
            },
            "fingerprint": self.config.fingerprint(),
            "config": self.config.model_dump(mode="json", exclude={"dataset": {"questions"}}),
            "code_version": code_version(),
            "output_uri": self.output_uri,
            "updated_at": datetime.datetime.now(datetime.UTC).isoformat(),
        }

    # ---- running -----------------------------------------------------------------------------
    def _progress(self, state: _State, pool: AgentPool | None, total: int, skipped: int) -> Progress:
        elapsed = time.monotonic() - state.started
        done = skipped + state.built
        rate = state.built / elapsed if elapsed > 0 else 0.0
        remaining = total - done
        return Progress(
            trees_done=done,
            trees_total=total,
            trees_skipped=skipped,
            nodes=state.nodes,
            prompt_tokens=pool.usage.prompt_tokens if pool else 0,
            completion_tokens=pool.usage.completion_tokens if pool else 0,
            elapsed_s=elapsed,
            nodes_per_second=state.nodes / elapsed if elapsed > 0 else 0.0,
            trees_per_second=rate,
            eta_s=0.0 if remaining == 0 else (remaining / rate if rate > 0 else -1.0),
            errors=pool.usage.failed_requests if pool else 0,
        )

    async def events(self) -> AsyncIterator[Event]:
        questions = await asyncio.to_thread(load_questions, self.dataset, shard=self.shard, limit=self.limit)
        await asyncio.to_thread(self._check_conflict)
        existing = set(await asyncio.to_thread(list_tree_keys, self.store, self.job_id))
        copies = self.config.tree.trees_per_question
        wanted = [(q, j) for q in questions for j in range(copies)]
        todo = deque(
            (q, j) for q, j in wanted if tree_key(self.job_id, replica_tree_id(q.id, j)) not in existing
        )
        total, skipped = len(wanted), len(wanted) - len(todo)
        state = _State()
        mkey = manifest_key(self.job_id, self.shard)
        # backends first: a bad endpoint fails the call before anything is written
        pool = AgentPool(self.config.agents, self.backend_factory) if todo else None
        metadata = {
            "job_id": self.job_id,
            "fingerprint": self.config.fingerprint(),
            "code_version": code_version(),
        }
        queue: asyncio.Queue[TreeBuilt] = asyncio.Queue()
        workers: list[asyncio.Task[None]] = []
        try:
            await asyncio.to_thread(
                self.store.put_json, mkey, self._manifest("running", total, skipped, Progress())
            )
            log.info("job %s shard %s: %d trees, %d already built", self.job_id, self.shard, total, skipped)
            yield JobStarted(self.job_id, total, skipped, self.output_uri)
            if pool is not None:
                builder = TreeBuilder(self.config, pool, metadata=metadata)

                async def worker() -> None:
                    while todo:
                        question, replica = todo.popleft()
                        queue.put_nowait(await self._build_one(builder, question, replica, state))

                workers = [
                    asyncio.create_task(worker())
                    for _ in range(min(self.config.max_trees_in_flight, len(todo)))
                ]
            all_done = asyncio.gather(*workers)
            last_progress = time.monotonic()
            while True:
                while not queue.empty():
                    yield queue.get_nowait()
                if all_done.done():
                    all_done.result()  # raises the first worker error
                    break
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, all_done}, timeout=self.progress_interval_s, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    yield getter.result()
                else:
                    getter.cancel()
                if time.monotonic() - last_progress >= self.progress_interval_s:
                    last_progress = time.monotonic()
                    yield self._progress(state, pool, total, skipped)
        except BaseException as exc:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if isinstance(exc, Exception):
                progress = self._progress(state, pool, total, skipped)
                manifest = self._manifest(
                    "failed", total, skipped, progress, error=f"{type(exc).__name__}: {exc}"
                )
                try:
                    await asyncio.to_thread(self.store.put_json, mkey, manifest)
                except Exception:  # the original error matters more
                    log.exception("could not record the failure in %s", mkey)
            raise
        finally:
            if pool is not None:
                await pool.aclose()
        progress = self._progress(state, pool, total, skipped)
        await asyncio.to_thread(
            self.store.put_json, mkey, self._manifest("complete", total, skipped, progress)
        )
        yield progress
        yield Summary(self.job_id, self.output_uri, self.manifest_uri, progress)

    async def _build_one(
        self, builder: TreeBuilder, question: Question, replica: int, state: _State
    ) -> TreeBuilt:
        tree = await builder.build(question, replica)
        key = tree_key(self.job_id, tree.id)
        await asyncio.to_thread(self.store.put_text, key, tree_to_json_line(tree) + "\n")
        state.built += 1
        state.nodes += len(tree.nodes)
        return TreeBuilt(tree.id, len(tree.nodes), self.store.uri(key))

    async def run(self) -> Summary:
        """Run to completion and return the summary (for library use and the CLI's --local)."""
        summary = None
        async for event in self.events():
            if isinstance(event, Summary):
                summary = event
        if summary is None:  # pragma: no cover - events() always ends with a summary or raises
            raise RuntimeError("the job ended without a summary")
        return summary
