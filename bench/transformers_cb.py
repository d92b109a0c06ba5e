"""The agent engine against transformers' own continuous batching (``generate_batch``) on tree prompts.

Records the prompts of a tree-building job (tiny model, in process, as bench/profile_engine.py),
then generates greedy continuations of --new-tokens tokens for all of them at once with
(1) `pbt.backends.local.LocalBackend` (prefix cache on and off) and (2) transformers'
``model.generate_batch`` (paged KV cache, continuous batching, its block sharing for prefixes).
transformers' engine takes one generation config for all requests (no per-request sampling
parameters, seeds, stop strings or min_tokens), so the comparison is greedy only.

    PYTHONPATH=. python bench/transformers_cb.py --questions 4
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

NQ = Path(__file__).resolve().parent.parent / "examples" / "data" / "nq_open" / "NQ-open.dev.jsonl"


def record_prompts(model_dir: Path, questions: int, new_tokens: int) -> list[list[int]]:
    from pbt.backends.base import ChatBackend
    from pbt.backends.local import LocalBackend
    from pbt.config import RunConfig
    from pbt.orchestrate import TreeJob
    from pbt.store import LocalStore

    backend = LocalBackend(model_dir, device="cpu", max_batch_size=64)
    prompts: list[list[int]] = []

    class Recording(ChatBackend):
        name = backend.name

        async def chat(self, messages, params):
            prompts.append(backend.encode(backend.render(messages)))
            return await backend.chat(messages, params)

    agent = {"endpoint": "local:x", "max_in_flight": 64}
    config = RunConfig.from_dict(
        {
            "agents": {"a": agent, "b": agent, "extractor": agent},
            "sampling": {"max_tokens": new_tokens, "min_tokens": new_tokens, "seed": 1},
            "extraction": {"mode": "llm", "max_tokens": 4},
            "tree": {"max_turns": 4},
            "dataset": {"format": "nq_open", "path": str(NQ)},
            "max_trees_in_flight": questions,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        job = TreeJob(
            config, LocalStore(tmp), job_id="rec", limit=questions, backend_factory=lambda r, _: Recording()
        )
        asyncio.run(job.run())
    backend.close()
    return prompts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both engines.")
    args = parser.parse_args()

    import torch
    from transformers import GenerationConfig

    from pbt.backends.base import SamplingParams
    from pbt.backends.local import LocalBackend
    from pbt.models.tiny import build_tiny_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0)
        prompts = record_prompts(model_dir, args.questions, args.new_tokens)
        params = SamplingParams(temperature=0.0, max_tokens=args.new_tokens, min_tokens=args.new_tokens)
        print(
            f"{len(prompts)} prompts, {sum(map(len, prompts))} prompt tokens, {args.new_tokens} new tokens each"
        )
        for label, mb in (("LocalBackend, prefix cache", 256.0), ("LocalBackend, no prefix cache", 0.0)):
            backend = LocalBackend(
                model_dir, device="cpu", max_batch_size=64, num_threads=args.threads, prefix_cache_mb=mb
            )
            started = time.perf_counter()
            futures = [backend.submit(p, params) for p in prompts]
            outs = [f.result() for f in futures]
            print(f"{label:<40}{time.perf_counter() - started:8.2f} s")
            backend.close()
        model = backend.model
        eos = backend.eos_ids
        config = GenerationConfig(
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=backend.pad_id,
        )
        for attempt in range(2):  # the first call also warms up
            started = time.perf_counter()
            try:
                result = model.generate_batch(inputs=prompts, generation_config=config, progress_bar=False)
            except Exception as exc:  # report, do not hide
                print(f"transformers generate_batch failed: {type(exc).__name__}: {exc}")
                return
            print(
                f"transformers generate_batch (run {attempt + 1}){'':<13}{time.perf_counter() - started:8.2f} s"
            )
        same = 0
        ordered = [
            result[k]
            for k in sorted(result, key=lambda k: int(k.split("_")[-1]) if k.split("_")[-1].isdigit() else k)
        ]
        for out, mine in zip(ordered, outs, strict=False):
            same += (
                backend.tokenizer.decode(out.generated_tokens, skip_special_tokens=True)
                == mine.choices[0].text
            )
        print(f"greedy outputs equal to LocalBackend's: {same} of {len(prompts)}")


if __name__ == "__main__":
    main()
