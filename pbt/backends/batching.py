"""Continuous batching for `pbt.backends.local.LocalBackend`: the worker thread and the running batch.

One worker thread owns the model. Requests wait in a queue; between two decoding steps the
worker admits every waiting request that fits (``max_batch_size`` rows; a request with ``n``
choices is ``n`` rows): it prefills the newcomers in their own left-padded batch and merges
their KV cache into the running one (padding the shorter cache on the left, masked out), so a
new request never waits for the longest request of the batch to finish. Finished rows leave at
once. Anything the engine raises fails only the requests it concerns; the worker keeps running.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pbt.backends.base import SamplingParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchStats:
    """One decoding step: rows decoded together, their requests, tokens prefilled and generated."""

    rows: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    #: columns of the running KV cache after the step (longest live row, left padding trimmed)
    width: int = 0
    #: of `prompt_tokens`, those served from the prefix cache (not recomputed)
    cached_tokens: int = 0


@dataclass(eq=False)
class Request:
    prompt_ids: list[int]
    params: SamplingParams
    future: concurrent.futures.Future
    model: str
    rows: list[Row] = field(default_factory=list)
    #: internal id of a runtime LoRA adapter (None: the base model)
    adapter: str | None = None
    pending: int = 0


@dataclass(eq=False)
class Row:
    request: Request
    index: int
    generator: Any
    limit: int
    tokens: list[int] = field(default_factory=list)
    text: str | None = None
    finish_reason: str | None = None


@dataclass(eq=False)
class Call:
    """Other work for the model thread (candidate scoring), run between decoding steps."""

    fn: Callable[[], Any]
    future: concurrent.futures.Future


@dataclass(eq=False)
class RunningBatch:
    """Rows being decoded together, with their KV cache, attention mask, last positions and logits."""

    rows: list[Row]
    cache: Any  # a DynamicCache of `pbt.backends.kv_cache.SlabLayer`s
    mask: Any  # (B, L) 1 = real token
    positions: Any  # (B, 1) position of the last token
    logits: Any  # (B, V) next-token logits
    #: prompt tokens of this prefill served from the prefix cache
    cached_tokens: int = 0

    def select(self, keep: list[int]) -> None:
        """Keep the rows `keep` (old indices, in their new order)."""
        import torch

        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        for layer in self.cache.layers:
            layer.keep_rows(keep)
        self.mask, self.positions, self.logits = self.mask[index], self.positions[index], self.logits[index]
        self.rows = [self.rows[j] for j in keep]
        self._trim_left()

    def drop(self, keep: list[int]) -> list[int]:
        """Keep the rows `keep` (ascending) and return them in their new order: the last kept rows
        move into the places of dropped ones, so no more cache rows are copied than were dropped."""
        order = fill_holes(keep, len(self.rows))
        self.select(order)
        return order

    def _trim_left(self) -> None:
        """Drop the leading cache columns that are padding in every remaining row.

        Every step adds a column and newcomers are padded to the running width, so without this a
        batch that never empties (a steady stream of requests, as when building trees) attends over
        an ever wider, mostly padded cache: measured, tree building slowed from 2 to 11 s per tree
        within one 70-tree job. Positions are kept per row, so trimming changes no output."""
        import torch

        used = self.mask.any(dim=0)
        if not bool(used.any()):
            return
        start = int(torch.nonzero(used)[0])
        if start == 0:
            return
        for layer in self.cache.layers:
            layer.drop_left(start)
        self.mask = self.mask[:, start:]

    def merge(self, other: RunningBatch) -> None:
        """Append `other`'s rows; the narrower side is padded on the left (masked)."""
        import torch

        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.append_rows(theirs)
        extra = other.mask.shape[1] - self.mask.shape[1]
        if extra > 0:
            self.mask = torch.cat([self.mask.new_zeros((self.mask.shape[0], extra)), self.mask], dim=1)
        elif extra < 0:
            other.mask = torch.cat([other.mask.new_zeros((other.mask.shape[0], -extra)), other.mask], dim=1)
        self.mask = torch.cat([self.mask, other.mask], dim=0)
        self.positions = torch.cat([self.positions, other.positions], dim=0)
        self.logits = torch.cat([self.logits, other.logits], dim=0)
        self.rows += other.rows


def fill_holes(keep: list[int], rows: int) -> list[int]:
    """The new order of the rows `keep` (ascending) of `rows`: each kept row past ``len(keep)`` takes
    the place of a dropped row before it, the others stay where they are."""
    kept = set(keep)
    dropped = [j for j in range(len(keep)) if j not in kept]
    movers = [j for j in keep if j >= len(keep)]
    order = list(range(len(keep)))
    for hole, mover in zip(dropped, movers, strict=True):
        order[hole] = mover
    return order


class Engine(Protocol):
    max_batch_size: int
    batch_wait_s: float
    can_merge: bool
    batch_listeners: list[Callable[[BatchStats], None]]

    def prefill(self, requests: list[Request]) -> RunningBatch: ...

    def step(self, batch: RunningBatch) -> int:
        """Decode one token for every row; drop finished rows; returns tokens generated."""
        ...


class BatchWorker:
    """The model thread: admits queued requests into the running batch between decoding steps."""

    def __init__(self, engine: Engine, name: str):
        self.engine = engine
        self.queue: queue.Queue = queue.Queue()
        self._carry: deque = deque()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the worker thread still runs (it serves nothing once it has died)."""
        return self._thread.is_alive()

    def put(self, item: Request | Call | None) -> None:
        self.queue.put(item)

    def stop(self, timeout: float = 60.0) -> None:
        self.queue.put(None)
        self._thread.join(timeout=timeout)

    # -- admission ---------------------------------------------------------------------------
    def _pull(self, block: bool) -> None:
        """Move queued items to the carry deque (waiting for the first one and a short window if `block`)."""
        if block:
            self._carry.append(self.queue.get())
            deadline = time.monotonic() + self.engine.batch_wait_s
            while True:
                try:
                    self._carry.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    return
        while True:
            try:
                self._carry.append(self.queue.get_nowait())
            except queue.Empty:
                return

    def _take(self, free_rows: int) -> list[Request]:
        """In order: run calls, note the stop marker, admit requests while their rows fit."""
        admitted: list[Request] = []
        rows = 0
        while self._carry:
            item = self._carry[0]
            if item is None:
                self._carry.popleft()
                self._stopping = True
            elif isinstance(item, Call):
                self._carry.popleft()
                _resolve(item.future, item.fn)
            else:
                alone = (
                    rows == 0 and free_rows == self.engine.max_batch_size
                )  # an oversized request runs alone
                if rows + item.params.n > free_rows and not alone:
                    break
                admitted.append(self._carry.popleft())
                rows += item.params.n
        return admitted

    # -- loop --------------------------------------------------------------------------------
    def _run(self) -> None:
        import torch

        threads = getattr(self.engine, "engine_threads", None)
        if threads:  # thread-local: the rest of the process keeps its setting
            torch.set_num_threads(threads)
        # every tensor of the model thread is an inference tensor (no autograd, in-place edits allowed)
        with torch.inference_mode():
            self._loop()

    def _loop(self) -> None:
        running: RunningBatch | None = None
        while True:
            if running is None and self._stopping and not self._carry:
                return
            if running is None or self.engine.can_merge:
                self._pull(block=running is None and not self._carry)
                free = self.engine.max_batch_size - (len(running.rows) if running else 0)
                newcomers = self._take(free) if free > 0 else []
            else:
                newcomers = []
            started = time.monotonic()
            prompt_tokens = sum(len(r.prompt_ids) for r in newcomers)
            cached_tokens = 0
            if newcomers:
                try:
                    batch = self.engine.prefill(newcomers)
                except Exception as exc:
                    log.exception("prefill of %d requests failed", len(newcomers))
                    _fail(newcomers, exc)
                else:
                    cached_tokens = batch.cached_tokens
                    if running is None:
                        running = batch
                    else:
                        try:
                            running.merge(batch)
                        except Exception as exc:  # the batch's state is unknown: fail its requests
                            log.exception("merging %d requests into the running batch failed", len(newcomers))
                            _fail([*_requests(running), *newcomers], exc)
                            running = None
                            continue
            if running is None:
                continue
            rows, requests = len(running.rows), len({id(r.request) for r in running.rows})
            try:
                generated = self.engine.step(running)
            except Exception as exc:
                log.exception("decoding step failed for %d rows", rows)
                _fail(_requests(running), exc)
                running = None
                continue
            width = int(running.mask.shape[1]) if running.rows else 0
            stats = BatchStats(
                rows, requests, prompt_tokens, generated, time.monotonic() - started, width, cached_tokens
            )
            for listener in self.engine.batch_listeners:
                try:
                    listener(stats)
                except Exception:  # metrics must never break generation
                    log.exception("batch listener failed")
            if not running.rows:
                running = None


def _resolve(future: concurrent.futures.Future, fn: Callable[[], Any]) -> None:
    try:
        future.set_result(fn())
    except Exception as exc:
        future.set_exception(exc)


def _requests(batch: RunningBatch) -> list[Request]:
    """The requests with rows in ``batch``, each once."""
    return list({id(r.request): r.request for r in batch.rows}.values())


def _fail(requests: list[Request], exc: Exception) -> None:
    for req in requests:
        if not req.future.done():
            req.future.set_exception(exc)
