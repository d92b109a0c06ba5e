"""Benchmark: the misinformation suite on the tiny model, batched vs the reference's way.

* batched: the agent server (`pbt serve agent`, KV cache, dynamic batching) over HTTP, with
  `concurrency` items in flight (the evaluator's normal mode);
* reference: one item at a time, one request at a time, in-process transformers `generate`
  with ``use_cache=False`` (how the reference implementation generates).

Both use one CPU thread, greedy decoding and the same items. Prints items/s, requests/s and the
ratio (target >= 5x on a 2-core machine). Usage: ``python bench/evaluator.py [--items 24]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from pbt.backends.base import ChatBackend, ChatResult, Choice, SamplingParams, Usage
from pbt.evaluate import parse_config, run_evaluation
from pbt.store import LocalStore

ROOT = Path(__file__).resolve().parent.parent
FARM = ROOT / "examples" / "data" / "farm" / "NQ1.jsonl"  # the excerpt vendored in the repository


class NoCacheBackend(ChatBackend):
    """The reference's generation: one conversation at a time, no KV cache."""

    name = "transformers-no-cache"

    def __init__(self, model_dir: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(1)
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self.lock = asyncio.Lock()
        self.requests = 0

    async def chat(self, messages, params: SamplingParams) -> ChatResult:
        async with self.lock:  # strictly one at a time
            ids = self.tok.apply_chat_template(
                list(messages), add_generation_prompt=True, return_tensors="pt"
            )
            if not isinstance(ids, self.torch.Tensor):
                ids = ids["input_ids"]
            with self.torch.no_grad():
                out = self.model.generate(
                    ids,
                    max_new_tokens=params.max_tokens,
                    do_sample=False,
                    use_cache=False,
                    pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id,
                )
            new = out[0, ids.shape[1] :]
            self.requests += 1
            text = self.tok.decode(new, skip_special_tokens=True)
            return ChatResult(
                choices=[Choice(index=0, text=text, completion_tokens=len(new))],
                usage=Usage(prompt_tokens=ids.shape[1], completion_tokens=len(new)),
            )


def _config(eval_id: str, endpoint: str, items: int, concurrency: int, max_tokens: int):
    return parse_config(
        {
            "eval_id": eval_id,
            "seeds": [1],
            "models": [{"name": "tiny", "endpoint": endpoint, "model": "tiny"}],
            "sampling": {"max_tokens": max_tokens},
            "concurrency": concurrency,
            "bootstrap_samples": 10,
            "suites": {
                "misinformation": {
                    "files": [str(FARM)],
                    "limit": items,
                    "stop_on_capitulation": False,
                    "persuade_all": True,
                }
            },
        }
    )


def _requests(store: LocalStore, eval_id: str) -> int:
    from pbt.evaluate.results import examples_key, read_jsonl

    return sum(1 + 2 * len(r["turns"]) for r in read_jsonl(store, examples_key(eval_id, "misinformation")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=32, help="Farm NQ1 items (default 32)")
    parser.add_argument("--concurrency", type=int, default=32, help="items in flight when batched")
    parser.add_argument("--max-tokens", type=int, default=24)
    args = parser.parse_args()
    available = sum(1 for line in FARM.open() if line.strip())
    if args.items > available:
        parser.error(f"--items {args.items}: {FARM.name} in examples/data has {available} items")

    from pbt.models.tiny import build_tiny_model

    sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))  # test helpers
    from agent_process import AgentProcess

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0)
        store = LocalStore(Path(tmp) / "store")

        with AgentProcess(model_dir, model_name="tiny", threads=1) as agent:
            cfg = _config("batched", agent.openai_url, args.items, args.concurrency, args.max_tokens)
            t0 = time.perf_counter()
            asyncio.run(run_evaluation(cfg, store=store))
            batched_s = time.perf_counter() - t0
        batched_req = _requests(store, "batched")

        backend = NoCacheBackend(model_dir)
        cfg = _config("reference", "reference", args.items, 1, args.max_tokens)
        t0 = time.perf_counter()
        asyncio.run(run_evaluation(cfg, store=store, backends={"tiny": backend}))
        ref_s = time.perf_counter() - t0
        ref_req = _requests(store, "reference")

    n = args.items
    print(f"misinformation suite, {n} NQ1 items, tiny model, greedy, max_tokens={args.max_tokens}, 1 thread")
    print(
        f"  batched (agent server, {args.concurrency} in flight): {n / batched_s:7.2f} items/s  {batched_req / batched_s:7.1f} requests/s  ({batched_s:.1f}s, {batched_req} requests)"
    )
    print(
        f"  reference (one at a time, no KV cache):     {n / ref_s:7.2f} items/s  {ref_req / ref_s:7.1f} requests/s  ({ref_s:.1f}s, {ref_req} requests)"
    )
    print(f"  speed-up: {ref_s / batched_s:.1f}x items/s (target >= 5x)")


if __name__ == "__main__":
    main()
