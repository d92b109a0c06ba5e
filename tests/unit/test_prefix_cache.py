"""Prefix cache and one-prefill-per-prompt: same outputs as without, hits counted right, memory bounded."""

from __future__ import annotations

import asyncio
import random

import pytest
import torch

from pbt.backends.base import SamplingParams
from pbt.backends.batching import Request, Row
from pbt.backends.local import LocalBackend
from pbt.backends.prefix_cache import PrefixCache

GREEDY = SamplingParams(temperature=0.0, max_tokens=8)


def kv(n: int, fill: float = 0.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-layer (keys, values) of `n` tokens whose value at position i is `fill` + i."""
    t = (fill + torch.arange(n, dtype=torch.float32))[None, :, None].expand(2, n, 3).clone()
    return [(t, t + 0.5), (t * 2, t * 2 + 0.5)]


# ---- PrefixCache on its own ------------------------------------------------------------------
def test_longest_prefix_of_any_entry_is_found_and_verified():
    cache = PrefixCache(max_tokens=1000, block=4)
    a = list(range(100, 120))  # 20 tokens
    cache.insert(a, kv(20))
    entry, k = cache.lookup(a[:13] + [7, 7, 7])
    assert entry is not None and entry.ids == a and k == 13  # block-aligned 12, then token by token
    entry, k = cache.lookup(a + [1, 2, 3], limit=22)
    assert k == 20
    assert cache.lookup(a, limit=len(a) - 1)[1] == 19  # the caller keeps the last token to feed
    assert cache.lookup([1, 2, 3] + a)[0] is None  # a prefix, not any substring
    assert cache.lookup(a[:3])[0] is None  # shorter than one block


def test_entries_are_found_only_in_the_space_that_computed_them():
    """A runtime adapter's keys and values differ from the base model's for the same tokens: a
    prompt cached under one adapter (space) is never served to another, nor to the base."""
    cache = PrefixCache(max_tokens=1000, block=4)
    a = list(range(100, 120))
    cache.insert(a, kv(20, fill=1.0), space="pbt__v1")
    assert cache.lookup(a)[0] is None
    assert cache.lookup(a, space="pbt__v2")[0] is None
    entry, k = cache.lookup(a, space="pbt__v1")
    assert k == 20 and entry.space == "pbt__v1"
    cache.insert(a, kv(20), space=None)  # the base's copy is its own entry, not a duplicate
    assert len(cache) == 2
    assert cache.lookup(a)[0].layers[0][0][0, 0, 0] == 0.0
    assert cache.lookup(a, space="pbt__v1")[0].layers[0][0][0, 0, 0] == 1.0


def test_hit_accounting_on_a_hand_built_workload():
    cache = PrefixCache(max_tokens=1000, block=4)
    root = list(range(40))
    child = root + list(range(500, 520))
    for ids in (root, child, child, list(range(900, 930))):
        entry, k = cache.lookup(ids, limit=len(ids) - 1)
        cache.record_hit(k)
        cache.insert(ids, kv(len(ids)))
    # root misses, child reuses the 40 root tokens, the repeat reuses 59 of 60, the stranger nothing
    assert cache.stats.prompt_tokens == 40 + 60 + 60 + 30
    assert cache.stats.cached_tokens == 40 + 59
    assert cache.stats.hit_fraction == pytest.approx(99 / 190)
    # the child extends the root, so the root's entry was dropped: child and stranger remain
    assert len(cache) == 2 and cache.stats.tokens_held == 60 + 30


def test_lru_keeps_memory_bounded():
    cache = PrefixCache(max_tokens=100, block=4)
    prompts = [[i] * 8 + list(range(30)) for i in range(10)]  # 38 tokens each, no shared block
    for ids in prompts:
        cache.insert(ids, kv(len(ids)))
        assert cache.stats.tokens_held <= 100
    assert len(cache) == 2 and cache.stats.evictions == 8
    assert cache.lookup(prompts[-1])[1] == 38 and cache.lookup(prompts[0])[0] is None
    # a lookup refreshes an entry: the other one leaves first
    cache.lookup(prompts[-2])
    cache.insert(prompts[0], kv(38))
    assert cache.lookup(prompts[-2])[1] == 38 and cache.lookup(prompts[-1])[0] is None
    PrefixCache(max_tokens=0).insert(prompts[0], kv(38))  # disabled: stores nothing
    assert len(PrefixCache(max_tokens=10)) == 0


# ---- sampling --------------------------------------------------------------------------------
def test_inverse_cdf_sampling_follows_the_filtered_distribution(tiny_model_dir):
    backend = LocalBackend(tiny_model_dir, num_threads=1, prefix_cache_mb=0)
    try:
        logits_row = torch.full((backend.model.config.vocab_size,), -30.0)
        logits_row[:4] = torch.tensor([2.0, 1.0, 0.5, 0.0])
        n = 20000

        def draw(params: SamplingParams) -> torch.Tensor:
            req = Request([1], params, None, "m")  # type: ignore[arg-type]
            rows = [Row(req, 0, random.Random(i), 10) for i in range(n)]
            return backend._choose(logits_row.expand(n, -1).clone(), rows)

        full = torch.bincount(draw(SamplingParams(temperature=1.0)), minlength=4)[:4] / n
        assert torch.allclose(full, logits_row[:4].softmax(-1), atol=0.015), full
        top2 = torch.bincount(draw(SamplingParams(temperature=1.0, top_k=2)), minlength=4)[:4] / n
        assert top2[2:].sum() == 0
        assert torch.allclose(top2[:2], logits_row[:2].softmax(-1), atol=0.015), top2
        cold = torch.bincount(draw(SamplingParams(temperature=0.25)), minlength=4)[:4] / n
        assert torch.allclose(cold, (logits_row[:4] / 0.25).softmax(-1), atol=0.015), cold
    finally:
        backend.close()


# ---- the engine with and without the prefix cache --------------------------------------------
@pytest.fixture(scope="module")
def pair(tiny_model_dir):
    cached = LocalBackend(tiny_model_dir, num_threads=1, max_batch_size=16)
    plain = LocalBackend(tiny_model_dir, num_threads=1, max_batch_size=16, prefix_cache_mb=0)
    yield cached, plain
    cached.close()
    plain.close()


def tree_prompts(backend: LocalBackend) -> list[list[int]]:
    """A hand-built tree: a root prompt, children extending it, grandchildren extending those."""
    root = backend.encode(
        backend.render([{"role": "user", "content": "What is the capital of France? " * 3}])
    )
    children = [root + backend.encode(f" reply number {i} is here.") for i in range(3)]
    grandchildren = [c + backend.encode(" and one more turn.") for c in children]
    return [root, *children, *grandchildren]


def run_waves(backend: LocalBackend, waves: list[list[list[int]]], params: SamplingParams) -> list[list[str]]:
    out = []
    for wave in waves:  # each wave concurrently, as a tree's levels arrive
        futures = [backend.submit(ids, params) for ids in wave]
        out += [[c.text for c in f.result(timeout=120).choices] for f in futures]
    return out


def test_greedy_with_prefix_cache_equals_without(pair):
    cached, plain = pair
    prompts = tree_prompts(cached)
    waves = [prompts[:1], prompts[1:4], prompts[4:]]
    before = cached.prefix_stats.cached_tokens
    with_cache = run_waves(cached, waves, GREEDY)
    assert cached.prefix_stats.cached_tokens - before >= len(prompts[0]) * 6  # every later prompt hit
    assert with_cache == run_waves(plain, waves, GREEDY)
    # and each alone (no batch mates, cold cache) gives the same
    assert with_cache == [run_waves(plain, [[p]], GREEDY)[0] for p in prompts]
    assert plain.prefix_stats.cached_tokens == 0


def test_hit_accounting_in_the_engine(tiny_model_dir):
    backend = LocalBackend(tiny_model_dir, num_threads=1)
    try:
        seen = []
        backend.batch_listeners.append(lambda s: seen.append((s.prompt_tokens, s.cached_tokens)))
        root = list(range(10, 60))  # 50 tokens
        child = root + list(range(200, 230))
        run_waves(backend, [[root], [child], [child]], GREEDY)
        stats = backend.prefix_stats
        assert stats.prompt_tokens == 50 + 80 + 80
        assert stats.cached_tokens == 50 + 79
        prefills = [s for s in seen if s[0]]
        assert prefills == [(50, 0), (80, 50), (80, 79)]
    finally:
        backend.close()


def test_n_choices_share_one_prefill_and_stay_reproducible(pair):
    cached, plain = pair
    params = SamplingParams(temperature=1.0, top_p=0.95, n=4, seed=11, max_tokens=10)
    prompts = tree_prompts(cached)[:2]
    rows_seen = []
    cached.batch_listeners.append(lambda s: rows_seen.append((s.rows, s.prompt_tokens)))
    try:
        first = run_waves(cached, [prompts], params)
    finally:
        cached.batch_listeners.clear()
    # one prefill of the two prompts' tokens (not 4x each) for 8 rows
    assert rows_seen[0] == (8, sum(len(p) for p in prompts))
    again = run_waves(cached, [prompts], params)  # now served by the prefix cache
    assert first == again == run_waves(plain, [prompts], params)
    assert all(len(set(choices)) > 1 for choices in first)
    # and with batch mates
    mates = run_waves(cached, [[prompts[1], prompts[0], *tree_prompts(cached)[2:]]], params)
    assert mates[:2] == [first[1], first[0]]


def test_prefix_cache_memory_is_capped(tiny_model_dir):
    backend = LocalBackend(tiny_model_dir, num_threads=1, prefix_cache_mb=0.05)
    try:
        cap = backend.prefix_cache.max_tokens
        assert 0 < cap < 200
        prompts = [[7 + i] * 20 + list(range(30, 80)) for i in range(8)]
        run_waves(backend, [[p] for p in prompts], GREEDY)
        assert 0 < backend.prefix_stats.tokens_held <= cap
        assert backend.prefix_stats.evictions > 0
    finally:
        backend.close()


def test_prefix_cache_size_is_validated(tiny_model_dir):
    from pbt.errors import ValidationError

    with pytest.raises(ValidationError):
        LocalBackend(tiny_model_dir, prefix_cache_mb=-1)


def test_concurrent_chat_uses_the_cache(pair):
    cached, _ = pair
    messages = [{"role": "user", "content": "Tell me about the moon. " * 4}]

    async def main():
        await cached.chat(messages, GREEDY)
        return await asyncio.gather(*(cached.chat(messages, GREEDY) for _ in range(3)))

    before = cached.prefix_stats.cached_tokens
    results = asyncio.run(main())
    assert len({r.choices[0].text for r in results}) == 1
    assert cached.prefix_stats.cached_tokens > before


def test_a_small_model_decodes_on_one_engine_thread_only(tiny_model_dir):
    before = torch.get_num_threads()
    backend = LocalBackend(tiny_model_dir, device="cpu")
    try:
        assert backend.engine_threads == 1
        from concurrent.futures import Future

        from pbt.backends.batching import Call

        future: Future = Future()  # the engine thread reports its own setting
        backend._worker.put(Call(torch.get_num_threads, future))
        assert future.result(timeout=60) == 1
        assert torch.get_num_threads() == before  # the rest of the process is untouched
    finally:
        backend.close()
    explicit = LocalBackend(tiny_model_dir, device="cpu", num_threads=before)
    try:
        assert explicit.engine_threads == before
    finally:
        explicit.close()
