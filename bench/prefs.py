"""Benchmark of the preference engine on simulated trees of the paper's shape.

Builds 10,000 trees (depth 4, branching 1-2-3-2, a branch stops when its node agrees, answers
drawn from a small vocabulary with Agree/Disagree/NONE tokens), then times `build_preferences`
(mode pbt: resolve, drop, score, compare, label, split, trim, format records) on the first
1k, 2k, 5k and 10k trees, best of 3 runs each. Prints trees/s per size and the growth of the
time from 1k to 10k trees, which must stay linear (per-tree cost within 1.5x of the 1k run;
exit status 1 otherwise). Also times reading the 10k trees back from a native file.

    .venv/bin/python bench/prefs.py [--trees 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pbt.answers import node_agrees
from pbt.prefs import build_preferences
from pbt.tree import Question, Tree, read_trees, write_trees

BRANCHING = (1, 2, 3, 2)
ANSWERS = ["Paris", "London", "Rome", "paris", "Agree", "Disagree", "NONE"]
WEIGHTS = [30, 20, 10, 5, 15, 10, 10]


def simulated_tree(rng: random.Random, index: int) -> Tree:
    tree_id = f"sim-{index:06d}"
    tree = Tree(
        id=tree_id, question=Question(id=tree_id, text="What is the capital of France?", gold=["paris"])
    )
    root = tree.add_node(
        parent=None, agent=0, text="I think it is Paris.", answers=[rng.choice(ANSWERS[:3]), None]
    )
    frontier = [root]
    for depth in range(1, len(BRANCHING)):
        agent = depth % 2
        nxt = []
        for parent in frontier:
            if node_agrees(parent.answers):
                continue
            for i in range(BRANCHING[depth]):
                answers = list(parent.answers)
                answers[agent] = rng.choices(ANSWERS, WEIGHTS)[0]
                nxt.append(
                    tree.add_node(parent=parent.id, agent=agent, text=f"turn {depth}.{i}", answers=answers)
                )
        frontier = nxt
    return tree


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    console = Console()

    rng = random.Random(args.seed)
    start = time.perf_counter()
    trees = [simulated_tree(rng, i) for i in range(args.trees)]
    nodes = sum(len(t.nodes) for t in trees)
    console.print(
        f"simulated {len(trees)} trees ({nodes / len(trees):.1f} nodes each) in {time.perf_counter() - start:.1f}s"
    )

    sizes = [s for s in (1_000, 2_000, 5_000, 10_000) if s <= args.trees] or [args.trees]
    table = Table(title="build_preferences (mode pbt)")
    for column in ("trees", "seconds", "trees/s", "pairs", "per-tree cost vs first"):
        table.add_column(column, justify="right")
    timings = {}
    for size in sizes:
        subset = trees[:size]
        pairs = len(build_preferences(subset, "pbt", seed=args.seed).records)
        timings[size] = best_time(
            lambda subset=subset: build_preferences(subset, "pbt", seed=args.seed), args.repeats
        )
        growth = (timings[size] / timings[sizes[0]]) / (size / sizes[0])
        table.add_row(
            f"{size:,}", f"{timings[size]:.3f}", f"{size / timings[size]:,.0f}", f"{pairs:,}", f"{growth:.2f}"
        )
    console.print(table)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trees.jsonl"
        write_trees(path, trees)
        seconds = best_time(lambda: read_trees(path), 1)
        console.print(
            f"read_trees: {len(trees):,} trees in {seconds:.2f}s ({len(trees) / seconds:,.0f} trees/s)"
        )

    first, last = sizes[0], sizes[-1]
    ratio = timings[last] / timings[first]
    per_tree_growth = ratio / (last / first)
    console.print(
        f"growth {first:,} -> {last:,} trees: time x{ratio:.2f} for x{last / first:.0f} trees "
        f"(per-tree cost x{per_tree_growth:.2f}; linear is 1.00)"
    )
    if per_tree_growth > 1.5:
        console.print("[red]superlinear: per-tree cost grew by more than 1.5x[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
