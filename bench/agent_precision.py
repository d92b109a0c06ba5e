"""World-agent training steps: fp32 (the baseline) vs bf16-mixed (`AgentTrainConfig.precision`).

Both modes train the default agent model (hidden 256, 4 layers, MLP 1024) from the same
initialisation on the same batches of agent A's real corpus (world seed 0, 100 facts), one
thread, as `pbt.world.agents.train_agents_parallel` runs each agent. Prints the mean seconds per
optimizer step of each mode (after warm-up steps) and the ratio fp32 / bf16-mixed (target > 1
where the CPU multiplies bfloat16 natively; `pbt.world.config.cpu_has_native_bf16` says whether
it does). Measured on the 2-core development machine (AMX), three runs: 0.78-0.87 s vs
0.50-0.59 s a step, 1.46-1.56x (~30 s in all); a whole seed's two agents 337-352 s vs 249-259 s
(docs/demo.md).
"""

from __future__ import annotations

import argparse
import random
import time

from rich.console import Console
from rich.table import Table

console = Console()


def _steps(precision: str, rows, tokenizer, steps: int, warmup: int) -> tuple[float, float]:
    """Seconds per step (after ``warmup``) and the last loss, with the training loop's own pieces."""
    import torch

    from pbt.world.config import AgentTrainConfig
    from pbt.world.train import _batches, agent_model, train_step

    cfg = AgentTrainConfig()
    model = agent_model(cfg, tokenizer, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    batches = _batches(rows, cfg.batch_size, random.Random(0), tokenizer.pad_token_id)
    times, loss = [], float("nan")
    for step in range(warmup + steps):
        batch = next(batches)
        started = time.perf_counter()
        loss = train_step(model, opt, batch, precision)
        if step >= warmup:
            times.append(time.perf_counter() - started)
    return sum(times) / len(times), loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=15, help="Timed steps per mode.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed steps first.")
    args = parser.parse_args()

    import torch

    from pbt.world.config import AgentTrainConfig, WorldConfig, cpu_has_native_bf16
    from pbt.world.corpus import build_corpus, vocabulary_texts
    from pbt.world.generate import build_world
    from pbt.world.tokenizer import build_tokenizer
    from pbt.world.train import encode

    torch.set_num_threads(1)
    world = build_world(WorldConfig(seed=0, n_facts=100))
    cfg = AgentTrainConfig()
    tokenizer = build_tokenizer(vocabulary_texts(world))
    rows = [encode(e, tokenizer, cfg.max_len) for e in build_corpus(world, "a", cfg)]
    results = {p: _steps(p, rows, tokenizer, args.steps, args.warmup) for p in ("fp32", "bf16-mixed")}

    table = Table(title=f"world agent steps ({args.steps} timed, batch {cfg.batch_size}, 1 thread)")
    for col in ("precision", "s / step", "last loss"):
        table.add_column(col)
    for precision, (seconds, loss) in results.items():
        table.add_row(precision, f"{seconds:.3f}", f"{loss:.3f}")
    console.print(table)
    ratio = results["fp32"][0] / results["bf16-mixed"][0]
    console.print(
        f"ratio fp32 / bf16-mixed: [bold]{ratio:.2f}x[/bold] (native bf16 on this CPU: {cpu_has_native_bf16()})"
    )


if __name__ == "__main__":
    main()
