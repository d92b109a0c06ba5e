"""Generation throughput: the reference's way vs the local batched backend vs the agent server.

The same tiny model, the same prompts (default 64 of ~300 tokens), the same number of new
tokens (default 80, forced with min_tokens so every mode generates exactly as many):

  (a) reference: one prompt at a time, ``model.generate(..., use_cache=False)``
  (b) `pbt.backends.local.LocalBackend`: all prompts concurrently, batched, KV cache
  (c) the agent server (`pbt serve agent`) over HTTP with 32 concurrent clients

Prints tokens/s of each and the ratios b/a (target >= 10) and c/b (target >= 0.8).
Run ``python bench/generation.py --help`` for the size flags; ``--prompts 16 --new-tokens 32``
finishes in well under a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def make_prompts(tokenizer, count: int, prompt_tokens: int) -> list[list[dict[str, str]]]:
    """`count` distinct chat prompts of about `prompt_tokens` tokens from the bundled corpus."""
    from pbt.models.tiny import CORPUS

    lines = [ln for ln in CORPUS.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    prompts = []
    for i in range(count):
        text, k = f"Prompt {i}. ", i
        while len(tokenizer(text, add_special_tokens=False).input_ids) < prompt_tokens:
            text += lines[k % len(lines)] + " "
            k += 7
        ids = tokenizer(text, add_special_tokens=False).input_ids[:prompt_tokens]
        prompts.append([{"role": "user", "content": tokenizer.decode(ids)}])
    return prompts


def bench_reference(model_dir: Path, prompts, new_tokens: int) -> tuple[int, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    encoded = [
        tok(
            tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
            add_special_tokens=False,
            return_tensors="pt",
        )
        for p in prompts
    ]
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, use_cache=False)
    with torch.inference_mode():
        model.generate(**encoded[0], **{**kwargs, "max_new_tokens": 2, "min_new_tokens": 2})  # warm-up
        started = time.perf_counter()
        total = 0
        for enc in encoded:
            out = model.generate(**enc, **kwargs)
            total += out.shape[1] - enc.input_ids.shape[1]
    return total, time.perf_counter() - started


async def _run_all(backend, prompts, params) -> int:
    results = await asyncio.gather(*(backend.chat(p, params) for p in prompts))
    return sum(r.usage.completion_tokens for r in results)


def bench_local(model_dir: Path, prompts, new_tokens: int, device: str, max_batch: int) -> tuple[int, float]:
    from pbt.backends.base import SamplingParams
    from pbt.backends.local import LocalBackend

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, min_tokens=new_tokens)
    backend = LocalBackend(model_dir, device=device, max_batch_size=max_batch)
    try:
        asyncio.run(
            _run_all(backend, prompts[:1], params.model_copy(update={"max_tokens": 2, "min_tokens": 2}))
        )
        started = time.perf_counter()
        total = asyncio.run(_run_all(backend, prompts, params))
        return total, time.perf_counter() - started
    finally:
        backend.close()


def bench_server(
    model_dir: Path, prompts, new_tokens: int, device: str, clients: int, threads: int | None, max_batch: int
) -> tuple[int, float]:
    from pbt.backends.base import SamplingParams
    from pbt.backends.http import HttpBackend

    sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))  # test helpers
    from agent_process import AgentProcess

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, min_tokens=new_tokens)
    extra = ("--device", device, "--max-batch-size", str(max_batch))
    with AgentProcess(model_dir, model_name="bench", threads=threads, extra_args=extra) as server:

        async def main() -> tuple[int, float]:
            async with HttpBackend(server.openai_url, max_concurrency=clients, timeout=600) as http:
                await _run_all(
                    http, prompts[:1], params.model_copy(update={"max_tokens": 2, "min_tokens": 2})
                )
                started = time.perf_counter()
                total = await _run_all(http, prompts, params)
                return total, time.perf_counter() - started

        return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, help="Model folder (default: build a tiny model, seed 0).")
    parser.add_argument("--prompts", type=int, default=64, help="Number of prompts.")
    parser.add_argument(
        "--prompt-tokens", type=int, default=300, help="Tokens per prompt (before the chat template)."
    )
    parser.add_argument("--new-tokens", type=int, default=80, help="New tokens per prompt.")
    parser.add_argument("--clients", type=int, default=32, help="Concurrent HTTP clients in (c).")
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=32,
        help="Most rows per batch in (b) and (c) (both engines' default).",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for every mode (default: torch's)."
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto, cpu or cuda for (b) and (c); (a) always runs on CPU as the reference script would here.",
    )
    parser.add_argument("--skip", default="", help="Comma-separated modes to skip (a, b, c).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            from pbt.models.tiny import build_tiny_model

            model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        prompts = make_prompts(tokenizer, args.prompts, args.prompt_tokens)
        skip = set(filter(None, args.skip.split(",")))
        console.print(
            f"{len(prompts)} prompts x ~{args.prompt_tokens} tokens, {args.new_tokens} new tokens, "
            f"max batch {args.max_batch_size} rows in (b) and (c), model {model_dir}, "
            f"torch threads {torch.get_num_threads()}"
        )
        rows: dict[str, tuple[int, float]] = {}
        if "a" not in skip:
            rows["a"] = bench_reference(model_dir, prompts, args.new_tokens)
        if "b" not in skip:
            rows["b"] = bench_local(model_dir, prompts, args.new_tokens, args.device, args.max_batch_size)
        if "c" not in skip:
            rows["c"] = bench_server(
                model_dir,
                prompts,
                args.new_tokens,
                args.device,
                args.clients,
                args.threads,
                args.max_batch_size,
            )

    names = {
        "a": "(a) reference: one at a time, no KV cache",
        "b": f"(b) local backend: batched (<= {args.max_batch_size}), KV cache",
        "c": f"(c) agent server over HTTP, {args.clients} clients",
    }
    table = Table(title="generation throughput")
    for col in ("mode", "tokens", "seconds", "tokens/s"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    rate = {}
    for key, (tokens, seconds) in rows.items():
        rate[key] = tokens / seconds
        table.add_row(names[key], str(tokens), f"{seconds:.2f}", f"{rate[key]:.1f}")
    console.print(table)
    if "a" in rate and "b" in rate:
        console.print(f"b/a = {rate['b'] / rate['a']:.1f}  (target >= 10)")
    if "b" in rate and "c" in rate:
        console.print(f"c/b = {rate['c'] / rate['b']:.2f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
