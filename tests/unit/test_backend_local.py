"""LocalBackend: batched greedy == unbatched, seeds independent of batch mates, adapters, lengths."""

from __future__ import annotations

import asyncio
import math

import pytest

from pbt.backends.base import SamplingParams
from pbt.backends.local import LocalBackend
from pbt.errors import ValidationError

pytestmark = pytest.mark.slow

PROMPTS = [
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are a careful historian."},
        {"role": "user", "content": "When did it end?"},
    ],
    [{"role": "user", "content": "What is the largest planet in the solar system? " * 6}],
    [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris. Final Answer: Paris"},
        {"role": "user", "content": "Are you sure? I think it is Lyon."},
    ],
]
GREEDY = SamplingParams(temperature=0.0, max_tokens=24)


@pytest.fixture(scope="module")
def local(tiny_model_dir):
    backend = LocalBackend(tiny_model_dir, num_threads=1, max_batch_size=16)
    yield backend
    backend.close()


def texts(result) -> list[str]:
    return [c.text for c in result.choices]


def test_batched_greedy_equals_unbatched_and_hf_generate(local):
    async def main():
        one_by_one = [await local.chat(p, GREEDY) for p in PROMPTS]
        together = await asyncio.gather(*(local.chat(p, GREEDY) for p in PROMPTS * 2))
        return one_by_one, together

    seen_batches = []
    local.batch_listeners.append(lambda stats: seen_batches.append(stats.rows))
    try:
        one_by_one, together = asyncio.run(main())
    finally:
        local.batch_listeners.clear()
    assert max(seen_batches) > 1, "concurrent requests were not batched"
    expected = [texts(r) for r in one_by_one]
    assert [texts(r) for r in together] == expected * 2
    # and token for token what transformers' own generate() gives
    for prompt, result in zip(PROMPTS, one_by_one, strict=True):
        ids = local.tokenizer(local.render(prompt), add_special_tokens=False, return_tensors="pt")
        out = local.model.generate(**ids, max_new_tokens=24, do_sample=False)
        new = out[0, ids.input_ids.shape[1] :].tolist()
        if local.tokenizer.eos_token_id in new:
            new = new[: new.index(local.tokenizer.eos_token_id)]
        assert local.tokenizer.decode(new, skip_special_tokens=True) == result.choices[0].text


def test_requests_join_a_running_batch_and_stay_exact(tiny_model_dir):
    """Continuous batching: staggered arrivals with different lengths join the running batch."""
    backend = LocalBackend(tiny_model_dir, num_threads=1, max_batch_size=6)
    prompts = [[{"role": "user", "content": f"Question {i}: what is {'blah ' * i}?"}] for i in range(12)]
    params = [SamplingParams(temperature=0.0, max_tokens=4 + 3 * i) for i in range(12)]
    steps: list[int] = []
    backend.batch_listeners.append(lambda stats: steps.append(stats.rows))

    async def main():
        alone = [await backend.chat(p, s) for p, s in zip(prompts, params, strict=True)]
        steps.clear()

        async def later(i: int):
            await asyncio.sleep(0.004 * i)
            return await backend.chat(prompts[i], params[i])

        return alone, await asyncio.gather(*(later(i) for i in range(12)))

    try:
        alone, staggered = asyncio.run(main())
    finally:
        backend.close()
    assert [texts(r) for r in staggered] == [texts(r) for r in alone]
    assert max(steps) == 6, "the batch never filled up to max_batch_size"
    assert all(r.choices[0].completion_tokens <= p.max_tokens for r, p in zip(staggered, params, strict=True))


def test_a_batch_that_never_empties_keeps_its_cache_narrow(tiny_model_dir):
    """A steady stream keeps the batch alive for many steps; finished rows' columns must go, or every
    step attends over a wider, mostly padded cache (tree building slowed down 5x within one job)."""
    backend = LocalBackend(tiny_model_dir, num_threads=1, max_batch_size=4)
    prompts = [
        [{"role": "user", "content": f"Question {i}: {'tell me more ' * (i % 5)}?"}] for i in range(24)
    ]
    # rows of different lengths finish at different steps, so newcomers join a batch that never empties
    params = [SamplingParams(temperature=0.0, max_tokens=3 + i % 7, min_tokens=3 + i % 7) for i in range(24)]
    widths: list[int] = []
    backend.batch_listeners.append(lambda stats: widths.append(stats.width))

    async def main():
        alone = [await backend.chat(p, s) for p, s in zip(prompts, params, strict=True)]
        widths.clear()
        return alone, await asyncio.gather(
            *(backend.chat(p, s) for p, s in zip(prompts, params, strict=True))
        )

    try:
        alone, streamed = asyncio.run(main())
        longest = max(
            len(backend.tokenizer(backend.render(p), add_special_tokens=False).input_ids) for p in prompts
        )
    finally:
        backend.close()
    assert [texts(r) for r in streamed] == [texts(r) for r in alone]
    # (the first entry may be the last step of the one-by-one runs: its listener runs after the result)
    assert 0 not in widths[1:-1], "the stream did not keep one batch running"
    # a row needs at most its prompt plus its new tokens; without trimming the width grows by one per step
    assert 0 < max(widths) <= longest + 9, (max(widths), longest)


def test_seeded_sampling_does_not_depend_on_batch_mates(local):
    params = SamplingParams(temperature=1.0, top_p=0.9, top_k=50, n=3, seed=5, max_tokens=12)

    async def main():
        alone = await local.chat(PROMPTS[0], params)
        crowded = await asyncio.gather(
            local.chat(PROMPTS[1], params.model_copy(update={"seed": 9})),
            local.chat(PROMPTS[0], params),
            local.chat(PROMPTS[2], GREEDY),
        )
        return alone, crowded[1]

    alone, crowded = asyncio.run(main())
    assert texts(alone) == texts(crowded)
    assert len(set(texts(alone))) > 1


def test_min_max_tokens_and_stop(local):
    async def main():
        exact = await local.chat(PROMPTS[0], SamplingParams(temperature=0.0, min_tokens=10, max_tokens=10))
        greedy = await local.chat(PROMPTS[0], SamplingParams(temperature=0.0, max_tokens=10))
        stop_at = greedy.choices[0].text[3:6]
        stopped = await local.chat(PROMPTS[0], SamplingParams(temperature=0.0, max_tokens=10, stop=[stop_at]))
        return exact, greedy, stopped, stop_at

    exact, greedy, stopped, stop_at = asyncio.run(main())
    assert exact.choices[0].completion_tokens == 10 and exact.choices[0].finish_reason == "length"
    assert exact.usage.completion_tokens == 10
    assert stopped.choices[0].finish_reason == "stop"
    assert stop_at not in stopped.choices[0].text
    assert greedy.choices[0].text.startswith(stopped.choices[0].text)


def test_prompt_longer_than_context_is_rejected(local):
    long = [{"role": "user", "content": "word " * (local.max_context + 10)}]
    with pytest.raises(ValidationError, match="context"):
        asyncio.run(local.chat(long, GREEDY))
    with pytest.raises(ValidationError, match="messages"):
        asyncio.run(local.chat([], GREEDY))


def test_candidate_logprobs_equal_unpadded_forward(local):
    import torch

    candidates = ["yes", "no", "Paris is the capital"]
    scores = asyncio.run(local.candidate_logprobs(PROMPTS[1], candidates))
    prompt = local.tokenizer(local.render(PROMPTS[1]), add_special_tokens=False).input_ids
    for cand, score in zip(candidates, scores, strict=True):
        cand_ids = local.tokenizer(cand, add_special_tokens=False).input_ids
        ids = torch.tensor([prompt + cand_ids], device=local.model.device)
        with torch.inference_mode():
            logprobs = local.model(input_ids=ids).logits[0, :-1].log_softmax(-1)
        expected = sum(float(logprobs[len(prompt) - 1 + k, t]) for k, t in enumerate(cand_ids))
        assert math.isclose(score, expected, abs_tol=1e-4)


def test_adapter_changes_outputs(tiny_model_dir, tmp_path, local):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")

    async def main(backend):
        return [texts(await backend.chat(p, GREEDY)) for p in PROMPTS]

    adapted = LocalBackend(tiny_model_dir, tmp_path / "adapter", num_threads=1)
    try:
        assert asyncio.run(main(adapted)) != asyncio.run(main(local))
        assert adapted.name.endswith(str(tmp_path / "adapter"))
    finally:
        adapted.close()
    with pytest.raises(ValidationError, match="adapter_config.json"):
        LocalBackend(tiny_model_dir, tmp_path, num_threads=1)


def test_a_failed_merge_fails_its_requests_and_the_worker_serves_on(tiny_model_dir, monkeypatch):
    """Requests joining a running batch whose merge fails get the error (they used to hang: the
    worker thread died), and the backend serves the next request."""
    import threading
    import time

    from pbt.backends.batching import RunningBatch

    backend = LocalBackend(tiny_model_dir, num_threads=1, max_batch_size=8)
    step = LocalBackend.step

    def slow_step(self, batch):  # the first request decodes for ~1.5 s whatever the machine
        time.sleep(0.03)
        return step(self, batch)

    def broken_merge(self, other):
        raise RuntimeError("merge broke")

    decoding = threading.Event()
    backend.batch_listeners.append(lambda stats: decoding.set())

    async def main():
        first = asyncio.ensure_future(
            backend.chat(PROMPTS[0], SamplingParams(temperature=0.0, max_tokens=48))
        )
        while not decoding.is_set():  # the second arrives while the first decodes
            await asyncio.sleep(0.01)
        second = asyncio.ensure_future(backend.chat(PROMPTS[1], GREEDY))
        return await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 60)

    try:
        monkeypatch.setattr(LocalBackend, "step", slow_step)
        monkeypatch.setattr(RunningBatch, "merge", broken_merge)
        outcomes = asyncio.run(main())
        monkeypatch.undo()
        assert all(isinstance(o, RuntimeError) and "merge broke" in str(o) for o in outcomes), outcomes
        assert backend.healthy
        again = asyncio.run(asyncio.wait_for(backend.chat(PROMPTS[0], GREEDY), 60))
        assert again.choices[0].text
    finally:
        backend.close()
