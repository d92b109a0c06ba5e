"""The results of an evaluation in the object store (keys: `pbt.store.layout`), and resumption.

::

    results/{eval_id}/config.json                 the config (secrets masked) and its fingerprint
    results/{eval_id}/{suite}/examples.jsonl      one record per finished example (every prompt,
                                                  response, extracted answer and verdict)
    results/{eval_id}/{suite}/summary.json        that suite's metrics, config, models, seeds, lineage
    results/{eval_id}/summary.json                every suite's summary together, plus the state
    results/{eval_id}/report.md                   tables shaped like the paper's Tables 1-3
    results/{eval_id}/team_debate/team_accuracy_by_order.png

Each record has a unique ``key`` (suite, model or team, seed, item). Re-running an evaluation id
reads ``examples.jsonl`` back and skips the keys it holds. The file is rewritten whole (atomic
in both stores) at checkpoints (see `FLUSH_INTERVAL_S`), on any error and at the end, so a crash
loses at most the records since the last checkpoint and never leaves a half-written file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

from pbt.errors import ConflictError, NotFoundError, ValidationError
from pbt.store import ObjectStore
from pbt.store.layout import (
    RESULTS_PREFIX,
    config_key,
    eval_prefix,
    examples_key,
    figure_key,
    report_key,
    suite_summary_key,
    summary_key,
)

log = logging.getLogger(__name__)

#: a checkpoint rewrites the whole examples.jsonl, so it happens after `checkpoint_every` new
#: records AND once the new records are >= 10% of the file or this many seconds have passed:
#: the bytes written stay a small multiple of the final file even for long runs
FLUSH_INTERVAL_S = 30.0


def read_jsonl(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    """Rows of a JSONL object; bad lines raise `ValidationError` naming ``uri:line``."""
    rows = []
    for n, line in enumerate(store.get_text(key).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"malformed JSON ({exc.msg})", location=f"{store.uri(key)}:{n}") from None
    return rows


class ExampleLog:
    """The records of one suite: loads finished ones, adds new ones, checkpoints to the store.

    Used from one event loop. Checkpoints upload in a worker thread (the loop keeps serving
    other examples and, in the service, gRPC calls); writes are serialized so an older
    snapshot never lands after a newer one. `flush_now` writes synchronously (error paths).
    """

    def __init__(self, store: ObjectStore, eval_id: str, suite: str, *, checkpoint_every: int = 8):
        self.store = store
        self.key = examples_key(eval_id, suite)
        self.checkpoint_every = checkpoint_every
        self._write_lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._dirty = 0
        self._last_flush = time.monotonic()
        self._seq = self._written_seq = 0
        if store.exists(self.key):
            for row in read_jsonl(store, self.key):
                self._records[row["key"]] = row
            log.info("resuming %s: %d finished examples", self.key, len(self._records))

    def done(self, key: str) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[dict[str, Any]]:
        return list(self._records.values())

    def _due(self) -> bool:
        return self._dirty >= self.checkpoint_every and (
            self._dirty * 10 >= len(self._records) or time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S
        )

    def _snapshot(self) -> tuple[int, list[dict[str, Any]]]:
        self._dirty = 0
        self._last_flush = time.monotonic()
        self._seq += 1
        return self._seq, sorted(self._records.values(), key=lambda r: r["key"])

    def _write(self, snapshot: tuple[int, list[dict[str, Any]]]) -> None:
        seq, rows = snapshot
        with self._write_lock:
            if seq <= self._written_seq:  # a newer snapshot is already stored
                return
            self.store.put_jsonl(self.key, rows)
            self._written_seq = seq

    async def add(self, record: dict[str, Any]) -> None:
        """Keep a finished record; checkpoint when due (see `FLUSH_INTERVAL_S`)."""
        self._records[record["key"]] = record
        self._dirty += 1
        if self._due():
            await asyncio.to_thread(self._write, self._snapshot())

    async def flush(self) -> None:
        if self._dirty:
            await asyncio.to_thread(self._write, self._snapshot())

    def flush_now(self) -> None:
        """Write every record synchronously (on errors and cancellation, where awaiting is unsafe).

        Also when no record is new but the latest checkpoint has not landed yet: a task cancelled
        while awaiting its checkpoint leaves the write running in a worker thread, and the records
        must be in the store when this returns (the caller may exit right after)."""
        if self._dirty or self._seq > self._written_seq:
            self._write(self._snapshot())


def check_or_write_config(store: ObjectStore, eval_id: str, config_public: dict, fingerprint: str) -> bool:
    """Record the config of a new evaluation, or check that a resumed one did not change.

    Returns True when results of an earlier run exist (a resume).
    """
    key = config_key(eval_id)
    if store.exists(key):
        old = store.get_json(key)
        if old.get("fingerprint") != fingerprint:
            raise ConflictError(
                f"evaluation {eval_id!r} already exists at {store.uri(eval_prefix(eval_id))} with another "
                f"config (fingerprint {old.get('fingerprint')} != {fingerprint}); use a new eval_id"
            )
        return True
    store.put_json(key, {"fingerprint": fingerprint, "config": config_public})
    return False


def load_summary(store: ObjectStore, eval_id: str) -> dict[str, Any]:
    key = summary_key(eval_id)
    if not store.exists(key):
        if store.exists(config_key(eval_id)):
            return {"eval_id": eval_id, "state": "running", "suites": {}}
        raise NotFoundError(f"evaluation {eval_id!r} not found at {store.uri(eval_prefix(eval_id))}")
    return store.get_json(key)


__all__ = [
    "FLUSH_INTERVAL_S",
    "RESULTS_PREFIX",
    "ExampleLog",
    "check_or_write_config",
    "config_key",
    "eval_prefix",
    "examples_key",
    "figure_key",
    "load_summary",
    "read_jsonl",
    "report_key",
    "suite_summary_key",
    "summary_key",
]
