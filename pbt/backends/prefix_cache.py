"""Prefix cache for `pbt.backends.local.LocalBackend`: KV caches of earlier prompts, keyed by token prefix.

The CPU counterpart of vLLM's automatic prefix caching. Tree building sends prompts that share
long prefixes: every grandchild's prompt extends its grandparent's prompt (the same speaker's
system prompt, the question, the turns so far), and one persona's system prompt opens the
prompts of many trees. The engine stores each prefilled prompt's keys and values here; a later
prompt looks up the longest stored token prefix and only its remaining tokens go through the
model. Keys and values at position i depend only on tokens 0..i (causal attention), so a prefix
of any stored sequence can be reused, not just whole stored prompts.

Lookup hashes the prompt in blocks of `block` tokens (each block's hash chains the previous
one, so equal hashes mean equal prefixes), walks the chain as far as some entry holds it, then
extends token by token inside the deepest entry found; the match is verified token for token,
so a hash collision can only cost a miss. Entries live in a `space` (the adapter that computed
them: a LoRA on the attention projections changes the keys and values of the same tokens), and
a lookup only finds entries of its own space. Memory is bounded: at most `max_tokens` tokens are
held (least recently used entries leave first), and an entry that another one extends is dropped.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Entry:
    """One cached token sequence and its per-layer keys and values, each ``(heads, len(ids), dim)``."""

    ids: list[int]
    layers: list[tuple[Any, Any]]
    key: int = 0
    hashes: list[int] = field(default_factory=list)
    space: str | None = None


@dataclass
class PrefixStats:
    """Prompt tokens looked up, those served from the cache, entries and tokens held, evictions."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    entries: int = 0
    tokens_held: int = 0
    evictions: int = 0

    @property
    def hit_fraction(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


class PrefixCache:
    """LRU map from token sequences to their KV caches, with longest-prefix lookup.

    Args:
        max_tokens: most tokens held over all entries (0 disables the cache: nothing is stored).
        block: tokens per hashed block; prefixes shorter than one block are never reused.
    """

    def __init__(self, max_tokens: int, block: int = 16):
        if max_tokens < 0:
            raise ValueError("max_tokens must be >= 0")
        self.max_tokens = max_tokens
        self.block = max(1, block)
        self.stats = PrefixStats()
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._index: dict[int, int] = {}  # block-chain hash -> entry key
        self._keys = itertools.count(1)

    def __len__(self) -> int:
        return len(self._entries)

    def _chain(self, ids: list[int], blocks: int, space: str | None) -> list[int]:
        hashes, h, b = [], hash(space), self.block
        for i in range(blocks):
            h = hash((h, *ids[i * b : (i + 1) * b]))
            hashes.append(h)
        return hashes

    def lookup(
        self, ids: list[int], limit: int | None = None, *, space: str | None = None
    ) -> tuple[Entry | None, int]:
        """The entry of `space` sharing the longest prefix with `ids` (at most `limit` tokens) and
        that length.

        Counts `ids` as looked up (`PrefixStats`); the caller reports the tokens it actually
        reused with `record_hit`."""
        self.stats.prompt_tokens += len(ids)
        limit = len(ids) if limit is None else min(limit, len(ids))
        if not self._entries or limit < self.block:
            return None, 0
        best: Entry | None = None
        h, b, k = hash(space), self.block, 0
        for i in range(limit // b):
            h = hash((h, *ids[i * b : (i + 1) * b]))
            entry = self._entries.get(self._index.get(h, 0))
            if entry is None:
                break
            best, k = entry, (i + 1) * b
        if best is None:
            return None, 0
        if best.space != space or best.ids[:k] != ids[:k]:  # a hash collision: no reuse
            return None, 0
        n = min(len(best.ids), limit)
        while k < n and best.ids[k] == ids[k]:
            k += 1
        self._entries.move_to_end(best.key)
        return best, k

    def record_hit(self, tokens: int) -> None:
        self.stats.cached_tokens += tokens

    def insert(self, ids: list[int], layers: list[tuple[Any, Any]], *, space: str | None = None) -> None:
        """Store `ids` (computed in `space`) with its per-layer ``(keys, values)``, each
        ``(heads, len(ids), dim)``."""
        if not self.max_tokens or len(ids) < self.block or len(ids) > self.max_tokens:
            return
        blocks = len(ids) // self.block
        hashes = self._chain(ids, blocks, space)
        # already held inside a longer entry: nothing to add
        holder = self._entries.get(self._index.get(hashes[-1], 0))
        if (
            holder is not None
            and holder.space == space
            and len(holder.ids) >= len(ids)
            and holder.ids[: len(ids)] == ids
        ):
            self._entries.move_to_end(holder.key)
            return
        entry = Entry(list(ids), layers, next(self._keys), hashes, space)
        # entries that this one extends become redundant
        for h in hashes:
            old = self._entries.get(self._index.get(h, 0))
            if (
                old is not None
                and old.space == space
                and len(old.ids) <= len(ids)
                and ids[: len(old.ids)] == old.ids
            ):
                self._evict(old.key, count=False)
        self._entries[entry.key] = entry
        for h in hashes:
            self._index[h] = entry.key
        self.stats.tokens_held += len(ids)
        while self.stats.tokens_held > self.max_tokens:
            self._evict(next(iter(self._entries)))
        self.stats.entries = len(self._entries)

    def _evict(self, key: int, count: bool = True) -> None:
        entry = self._entries.pop(key)
        for h in entry.hashes:
            if self._index.get(h) == key:
                del self._index[h]
        self.stats.tokens_held -= len(entry.ids)
        self.stats.evictions += count
        self.stats.entries = len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._index.clear()
        self.stats.tokens_held = self.stats.entries = 0
