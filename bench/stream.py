"""A steady stream of dialogue turns through the local backend: cache trimming vs none.

Tree building keeps the batch of `pbt.backends.local.LocalBackend` alive for its whole job: new
requests join between decoding steps and finished rows leave, so the batch never empties. The
backend drops the KV-cache columns that are left padding in every remaining row
(`RunningBatch._trim_left`); without that (the baseline, patched in for this run only) every
step adds a column that stays, and each step attends over an ever wider, mostly padded cache.

Workload: ``--clients`` conversations run concurrently, each ``--turns`` turns long; every turn
sends the whole dialogue so far plus a new user message and forces ``8 + (client * 7 + turn * 3)
% 24`` new tokens (greedy, ``min_tokens = max_tokens``), so rows finish at different steps.
Both modes run the same workload on the same model; the outputs must be identical.

Prints wall time, tokens/s and the widest cache of each mode, and the ratio baseline time /
trimmed time (target > 1). The gap grows with the length of the stream: measured on the 2-core
development machine, 1.10 at 96 x 8 turns, 1.79 at the default 256 x 10 (~35 s in all), and
416 s -> 83 s (5.0) on a 70-tree demo job (docs/demo.md).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


async def _conversation(backend, client: int, turns: int) -> list[str]:
    from pbt.backends.base import SamplingParams

    messages = [{"role": "user", "content": f"Conversation {client}. Tell me about the river and the hills."}]
    replies = []
    for turn in range(turns):
        n = 8 + (client * 7 + turn * 3) % 24
        result = await backend.chat(messages, SamplingParams(temperature=0.0, max_tokens=n, min_tokens=n))
        text = result.choices[0].text
        replies.append(text)
        messages += [
            {"role": "assistant", "content": text},
            {"role": "user", "content": f"And then, turn {turn}?"},
        ]
    return replies


def run_mode(model_dir: Path, clients: int, turns: int, trim: bool) -> tuple[float, int, int, list]:
    from pbt.backends import batching
    from pbt.backends.local import LocalBackend

    original = batching.RunningBatch._trim_left
    if not trim:
        batching.RunningBatch._trim_left = lambda self: None  # the baseline: the cache only grows
    try:
        backend = LocalBackend(model_dir, device="cpu", num_threads=1, max_batch_size=32)
        widths: list[int] = []
        tokens = [0]

        def listen(stats) -> None:
            widths.append(stats.width)
            tokens[0] += stats.completion_tokens

        backend.batch_listeners.append(listen)

        async def main():
            return await asyncio.gather(*(_conversation(backend, c, turns) for c in range(clients)))

        started = time.perf_counter()
        outputs = asyncio.run(main())
        seconds = time.perf_counter() - started
        backend.close()
    finally:
        batching.RunningBatch._trim_left = original
    return seconds, tokens[0], max(widths), outputs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, help="Model folder (default: build a tiny model, seed 0).")
    parser.add_argument("--clients", type=int, default=256, help="Concurrent conversations.")
    parser.add_argument("--turns", type=int, default=10, help="Turns per conversation.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pbt-bench-") as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            from pbt.models.tiny import build_tiny_model

            model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0)
        results = {}
        for name, trim in (("baseline (no trimming)", False), ("trimmed (product)", True)):
            console.print(f"running {name} ...")
            results[name] = run_mode(model_dir, args.clients, args.turns, trim)
    table = Table(title=f"{args.clients} conversations x {args.turns} turns, greedy, 1 thread")
    for col in ("mode", "seconds", "tokens/s", "widest cache (columns)"):
        table.add_column(col)
    for name, (seconds, tokens, width, _) in results.items():
        table.add_row(name, f"{seconds:.1f}", f"{tokens / seconds:,.0f}", str(width))
    console.print(table)
    (base_s, _, _, base_out), (trim_s, _, _, trim_out) = results.values()
    if base_out != trim_out:
        raise SystemExit("outputs differ between the two modes: trimming changed generation")
    console.print(f"outputs identical; baseline / trimmed time = {base_s / trim_s:.2f} (target > 1)")


if __name__ == "__main__":
    main()
