"""Prometheus metrics of the agent server, in the default registry that KServe's ``/metrics`` serves."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from pbt.backends.local import BatchStats

REQUESTS = Counter(
    "pbt_agent_requests", "OpenAI-route requests by route and HTTP status.", ["route", "status"]
)
PROMPT_TOKENS = Counter("pbt_agent_prompt_tokens", "Prompt tokens processed.")
PROMPT_TOKENS_CACHED = Counter(
    "pbt_agent_prompt_tokens_cached",
    "Prompt tokens served from the prefix cache (not recomputed); hit fraction = this / prompt tokens.",
)
COMPLETION_TOKENS = Counter("pbt_agent_completion_tokens", "Completion tokens generated.")
BATCH_SIZE = Histogram(
    "pbt_agent_batch_size",
    "Rows (choices) decoded together, observed once per decoding step.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
BATCH_SECONDS = Histogram("pbt_agent_batch_seconds", "Wall time of one decoding step (with any prefill).")
REQUEST_SECONDS = Histogram("pbt_agent_request_seconds", "Latency of OpenAI-route requests.", ["route"])


def record_batch(stats: BatchStats) -> None:
    """`LocalBackend` batch listener."""
    BATCH_SIZE.observe(stats.rows)
    BATCH_SECONDS.observe(stats.seconds)
    PROMPT_TOKENS.inc(stats.prompt_tokens)
    PROMPT_TOKENS_CACHED.inc(stats.cached_tokens)
    COMPLETION_TOKENS.inc(stats.completion_tokens)
