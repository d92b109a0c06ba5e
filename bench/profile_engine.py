"""Where the agent engine's time goes under the tree workload (no HTTP, no gRPC).

Builds trees in this process with `pbt.orchestrate.TreeJob` against one shared
`pbt.backends.local.LocalBackend` on the tiny model (the same sampling as bench/orchestrator.py:
forced --new-tokens per turn, seeded, extraction by the LLM), times the engine's phases on the
worker thread (prefill, merge, decode forward, sampling, bookkeeping) and prints the top of a
cProfile of the worker thread. ``--no-prefix-cache`` turns the prefix cache off for comparison.

    PYTHONPATH=. python bench/profile_engine.py --questions 4 [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
import time
from collections import defaultdict
from pathlib import Path

NQ = Path(__file__).resolve().parent.parent / "examples" / "data" / "nq_open" / "NQ-open.dev.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--top", type=int, default=25, help="cProfile rows to print (0: none).")
    parser.add_argument("--no-prefix-cache", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the engine's choice).")
    parser.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval (s).")
    parser.add_argument("--model-dir", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from pbt.backends import batching
    from pbt.backends.local import LocalBackend
    from pbt.config import RunConfig
    from pbt.orchestrate import TreeJob
    from pbt.store import LocalStore

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.switch_interval:
        import sys

        sys.setswitchinterval(args.switch_interval)
    phases: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                phases[name] += time.perf_counter() - t0
                counts[name] += 1

        return wrapper

    profiler = cProfile.Profile()
    original_run = batching.BatchWorker._run

    def profiled_run(self):
        profiler.enable()
        try:
            original_run(self)
        finally:
            profiler.disable()

    batching.BatchWorker._run = profiled_run
    batching.RunningBatch.merge = timed("merge caches", batching.RunningBatch.merge)
    batching.RunningBatch.select = timed("drop finished rows + trim", batching.RunningBatch.select)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            from pbt.models.tiny import build_tiny_model

            model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0)
        kwargs = {"prefix_cache_mb": 0} if args.no_prefix_cache else {}
        backend = LocalBackend(
            model_dir, device="cpu", max_batch_size=64, num_threads=args.threads or None, **kwargs
        )
        backend.prefill = timed("prefill (whole)", backend.prefill)
        backend.step = timed("step (whole)", backend.step)
        backend._choose = timed("step: sampling", backend._choose)
        backend.model.forward = timed("model forward (prefill + decode)", backend.model.forward)
        backend.tokenizer.decode = timed("tokenizer.decode", backend.tokenizer.decode)
        agent = {"endpoint": "local:x", "max_in_flight": 64}
        config = RunConfig.from_dict(
            {
                "agents": {"a": agent, "b": agent, "extractor": agent},
                "sampling": {"max_tokens": args.new_tokens, "min_tokens": args.new_tokens, "seed": 1},
                "extraction": {"mode": "llm", "max_tokens": 4},
                "tree": {"max_turns": args.max_turns},
                "dataset": {"format": "nq_open", "path": str(NQ)},
                "max_trees_in_flight": args.questions,
            }
        )
        job = TreeJob(
            config,
            LocalStore(Path(tmp) / "store"),
            job_id="prof",
            limit=args.questions,
            backend_factory=lambda role, _: backend,
        )
        t0, cpu0 = time.perf_counter(), time.process_time()
        summary = asyncio.run(job.run())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        backend.close()

    nodes = summary.progress.nodes
    print(f"{nodes} nodes in {wall:.2f} s ({nodes / wall:.1f} nodes/s), process CPU {cpu:.2f} s")
    stats = getattr(backend, "prefix_stats", None)
    if stats is not None:
        print(f"prefix cache: {stats} hit fraction {stats.hit_fraction:.3f}")
    print(f"{'phase':<40}{'calls':>8}{'seconds':>10}{'% wall':>8}")
    for name in sorted(phases, key=phases.get, reverse=True):
        print(f"{name:<40}{counts[name]:>8}{phases[name]:>10.2f}{100 * phases[name] / wall:>8.1f}")
    if args.top:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
