"""World-agent training steps: precision (`AgentTrainConfig.precision`) x attention kernel.

Baseline: fp32 with sdpa attention, the training loop before the `auto` precision default (and
before `pbt_world.train.TRAIN_ATTENTION`: eager attention under bf16-mixed). Every mode trains
the default agent model (hidden 256, 4 layers, MLP 1024) from the same initialisation on the same
batches of agent A's real corpus (world seed 0, 100 facts, hedging), one thread, as
`pbt_world.agents.train_agents_parallel` runs each agent. Prints the mean seconds per optimizer
step of each mode (after warm-up steps), its last loss, and its speed-up over the baseline
(bf16-mixed gains only where the CPU multiplies bfloat16 natively;
`pbt.hardware.native_bf16` says whether it does). Measured numbers: docs/demo.md
("The agents", `precision`).
"""

from __future__ import annotations

import argparse
import random
import time

from rich.console import Console
from rich.table import Table

console = Console()

MODES = [("fp32", "sdpa"), ("fp32", "eager"), ("bf16-mixed", "sdpa"), ("bf16-mixed", "eager")]


def _steps(precision: str, attention: str, rows, tokenizer, steps: int, warmup: int) -> tuple[float, float]:
    """Seconds per step (after ``warmup``) and the last loss, with the training loop's own pieces."""
    import torch

    from pbt_world.config import AgentTrainConfig
    from pbt_world.train import _batches, agent_model, train_step

    cfg = AgentTrainConfig()
    model = agent_model(cfg, tokenizer, seed=0, attention=attention)
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

    from pbt.hardware import native_bf16
    from pbt_world.config import AgentTrainConfig, WorldConfig
    from pbt_world.corpus import build_corpus, vocabulary_texts
    from pbt_world.generate import build_world
    from pbt_world.tokenizer import build_tokenizer
    from pbt_world.train import TRAIN_ATTENTION, encode

    torch.set_num_threads(1)
    world = build_world(WorldConfig(seed=0, n_facts=100))
    cfg = AgentTrainConfig()
    tokenizer = build_tokenizer(vocabulary_texts(world))
    rows = [encode(e, tokenizer, cfg.max_len) for e in build_corpus(world, "a", cfg)]
    results = {m: _steps(*m, rows, tokenizer, args.steps, args.warmup) for m in MODES}

    table = Table(title=f"world agent steps ({args.steps} timed, batch {cfg.batch_size}, 1 thread)")
    for col in ("precision", "attention", "s / step", "last loss", "speed-up"):
        table.add_column(col)
    base = results[MODES[0]][0]
    for (precision, attention), (seconds, loss) in results.items():
        table.add_row(precision, attention, f"{seconds:.3f}", f"{loss:.3f}", f"{base / seconds:.2f}x")
    console.print(table)
    console.print(
        f"baseline fp32 + sdpa; training attention by precision {TRAIN_ATTENTION}; precision auto resolves to "
        f"[bold]{AgentTrainConfig(precision='auto').resolved().precision}[/bold] here "
        f"(native bf16: {native_bf16()})"
    )


if __name__ == "__main__":
    main()
