"""The KServe agent server in a subprocess on loopback, driven by the HTTP backend."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from agent_process import AgentProcess
from prometheus_client.parser import text_string_to_metric_families

from pbt.backends.base import SamplingParams
from pbt.backends.http import HttpBackend
from pbt.errors import ValidationError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Q = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def agent(tiny_model_dir):
    with AgentProcess(tiny_model_dir, model_name="tiny") as proc:
        yield proc


def run(coro):
    return asyncio.run(coro)


async def _chat(url: str, messages, params: SamplingParams, **kwargs):
    async with HttpBackend(url, **kwargs) as backend:
        return await backend.chat(messages, params)


def test_kserve_endpoints_and_model_listing(agent):
    assert httpx.get(agent.ready_url).status_code == 200
    assert httpx.get(f"{agent.url}/v1/models/tiny").json()["ready"] is True
    listing = httpx.get(f"{agent.openai_url}/models").json()
    assert [m["id"] for m in listing["data"]] == ["tiny"]
    # KServe's own V1 protocol reaches the same model
    body = {"instances": [{"messages": Q}], "parameters": {"max_tokens": 3, "temperature": 0}}
    predictions = httpx.post(f"{agent.url}/v1/models/tiny:predict", json=body).json()["predictions"]
    assert len(predictions) == 1 and isinstance(predictions[0], str)


def test_n_seed_min_and_max_tokens(agent):
    sampled = SamplingParams(temperature=1.0, n=3, seed=11, max_tokens=6, min_tokens=6)
    first = run(_chat(agent.openai_url, Q, sampled))
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert all(c.completion_tokens == 6 and c.finish_reason == "length" for c in first.choices)
    assert first.usage.completion_tokens == 18 and first.usage.prompt_tokens > 0
    assert len({c.text for c in first.choices}) > 1, "the n choices of one request should differ"
    # same seed -> same choices, through the /v1 alias and a bare base URL as well
    again = run(_chat(f"{agent.url}/v1", Q, sampled))
    bare = run(_chat(agent.url, Q, sampled))
    assert (
        [c.text for c in again.choices] == [c.text for c in first.choices] == [c.text for c in bare.choices]
    )
    other = run(_chat(agent.openai_url, Q, sampled.model_copy(update={"seed": 12})))
    assert [c.text for c in other.choices] != [c.text for c in first.choices]
    capped = run(_chat(agent.openai_url, Q, SamplingParams(temperature=0.0, max_tokens=4)))
    assert capped.choices[0].completion_tokens <= 4


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": "tiny"}, "messages"),
        ({"model": "tiny", "messages": Q, "n": 0}, "n"),
        ({"model": "tiny", "messages": Q, "max_tokens": 0}, "max_tokens"),
        ({"model": "nope", "messages": Q}, "model 'nope' is not served"),
        ({"model": "tiny", "messages": [{"role": "user", "content": "word " * 3000}]}, "context"),
        ({"model": "tiny", "messages": [{"role": "robot", "content": "hi"}]}, "role"),
    ],
)
def test_invalid_requests_get_400_and_server_keeps_serving(agent, body, needle):
    response = httpx.post(f"{agent.openai_url}/chat/completions", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert needle in error["message"] and error["code"] == 400
    assert httpx.get(agent.ready_url).status_code == 200
    assert (
        'pbt_agent_requests_total{route="chat_completions",status="400"}'
        in httpx.get(f"{agent.url}/metrics").text
    )
    ok = run(_chat(agent.openai_url, Q, SamplingParams(temperature=0.0, max_tokens=2)))
    assert len(ok.choices) == 1


def test_http_backend_raises_validation_error_with_server_message(agent):
    with pytest.raises(ValidationError, match="not served here"):
        run(_chat(agent.openai_url, Q, SamplingParams(max_tokens=2), model="missing"))


def test_32_concurrent_requests_are_batched(agent):
    def batch_histogram() -> tuple[float, float]:
        text = httpx.get(f"{agent.url}/metrics").text
        for family in text_string_to_metric_families(text):
            if family.name == "pbt_agent_batch_size":
                count = next(s.value for s in family.samples if s.name.endswith("_count"))
                ones = next(
                    s.value for s in family.samples if s.name.endswith("_bucket") and s.labels["le"] == "1.0"
                )
                return count, ones
        raise AssertionError("pbt_agent_batch_size missing from /metrics")

    count_before, ones_before = batch_histogram()

    async def main():
        async with HttpBackend(agent.openai_url, max_concurrency=32) as backend:
            prompts = [[{"role": "user", "content": f"Question number {i}?"}] for i in range(32)]
            return await asyncio.gather(
                *(backend.chat(p, SamplingParams(temperature=0.0, max_tokens=8)) for p in prompts)
            )

    results = run(main())
    assert len(results) == 32 and all(len(r.choices) == 1 for r in results)
    count, ones = batch_histogram()
    batches, single = count - count_before, ones - ones_before
    # one observation per decoding step: how many rows were decoded together
    assert batches >= 8, "fewer decoding steps than tokens requested"
    assert batches - single >= 1, "no batch larger than 1 in the metrics"
    text = httpx.get(f"{agent.url}/metrics").text
    assert 'pbt_agent_requests_total{route="chat_completions",status="200"}' in text
    assert "pbt_agent_completion_tokens_total" in text


def test_prefix_cache_hits_are_in_the_metrics(agent):
    def counters() -> tuple[float, float]:
        values = {}
        for family in text_string_to_metric_families(httpx.get(f"{agent.url}/metrics").text):
            for sample in family.samples:
                values[sample.name] = sample.value
        return values["pbt_agent_prompt_tokens_total"], values["pbt_agent_prompt_tokens_cached_total"]

    messages = [{"role": "user", "content": "A long shared opening for the prefix cache. " * 4}]
    # two tokens, neither the last: the prefill step's metrics are recorded before the response
    params = SamplingParams(temperature=0.0, min_tokens=2, max_tokens=2)
    first = run(_chat(agent.openai_url, messages, params))
    prompt0, cached0 = counters()
    again = run(_chat(agent.openai_url, messages, params))
    prompt1, cached1 = counters()
    assert [c.text for c in again.choices] == [c.text for c in first.choices]
    # the repeat's prompt is served from the cache up to its last token
    assert prompt1 - prompt0 == again.usage.prompt_tokens
    assert cached1 - cached0 == again.usage.prompt_tokens - 1


def test_candidate_logprobs_over_http_match_local_backend(agent, tiny_model_dir):
    from pbt.backends.local import LocalBackend

    candidates = ["yes", "no", "Paris"]

    async def remote():
        async with HttpBackend(agent.openai_url) as backend:
            return await backend.candidate_logprobs(Q, candidates)

    async def local():
        async with LocalBackend(tiny_model_dir, num_threads=1) as backend:
            return await backend.candidate_logprobs(Q, candidates)

    over_http, in_process = run(remote()), run(local())
    assert len(over_http) == 3 and all(math.isfinite(x) and x < 0 for x in over_http)
    assert over_http == pytest.approx(in_process, abs=1e-4)


def test_runtime_lora_routes_are_off_by_default(agent):
    for route in ("load_lora_adapter", "unload_lora_adapter"):
        r = httpx.post(f"{agent.url}/v1/{route}", json={"lora_name": "x", "lora_path": "training/x/adapter"})
        assert r.status_code == 400 and "--enable-lora" in r.json()["error"]["message"]
