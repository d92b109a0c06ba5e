"""`pbt world`: build the synthetic persuasion world and train (or reuse) its agents."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

log = logging.getLogger(__name__)


def _world_cfg(seed: int, facts: int | None):
    from pbt_world.config import WorldConfig

    return WorldConfig(seed=seed) if facts is None else WorldConfig(seed=seed, n_facts=facts)


@click.group("world")
def world() -> None:
    """Build the synthetic persuasion world (invented facts, questions, Farm items, agents)."""


@world.command("build")
@click.option("--seed", type=int, default=0, show_default=True, help="World seed.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--facts", type=int, default=None, help="Number of invented facts (default 120).")
def build(seed: int, out: Path, facts: int | None) -> None:
    """Write the world's facts, NQ-open question files, knowledge split, Farm items, balanced items
    and personas."""
    from pbt_world.files import write_world
    from pbt_world.generate import build_world

    w = build_world(_world_cfg(seed, facts))
    paths = write_world(w, out)
    counts = {g: sum(f.group == g for f in w.facts) for g in ("both", "a_only", "b_only", "none")}
    click.echo(f"world seed {seed}: {len(w.facts)} facts {counts} -> {out}")
    for name, path in sorted(paths.items()):
        click.echo(f"  {name:18s} {path}")


@world.command("agents")
@click.option("--seed", type=int, default=0, show_default=True, help="World seed.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--facts", type=int, default=None, help="Number of invented facts (default 120).")
@click.option("--steps", type=int, default=None, help="Training steps per agent.")
@click.option("--store", "store_url", default=None, help="Object store URL (default: env / ./store).")
def agents(seed: int, out: Path, facts: int | None, steps: int | None, store_url: str | None) -> None:
    """Train the strong (a) and weak (b) world agents, or reuse them from the store's cache."""
    from rich.progress import Progress

    from pbt.store import open_store
    from pbt_world.agents import ensure_agents, ensure_world
    from pbt_world.check import knowledge_accuracy, load_agent
    from pbt_world.config import AgentTrainConfig

    cfg = AgentTrainConfig() if steps is None else AgentTrainConfig(steps=steps)
    store = open_store(store_url)
    w, _ = ensure_world(_world_cfg(seed, facts), store, out / "world")
    with Progress() as bar:
        tasks: dict[str, int] = {}

        def progress(agent: str, step: int, total: int, loss: float) -> None:
            if agent not in tasks:
                tasks[agent] = bar.add_task(f"agent {agent}", total=total)
            bar.update(tasks[agent], completed=step, description=f"agent {agent} loss {loss:.3f}")

        dirs = ensure_agents(w, cfg, store, out / "agents", progress=progress)
    report = {}
    for agent, path in dirs.items():
        model, tok = load_agent(path)
        report[agent] = {
            "dir": str(path),
            "known_accuracy": round(knowledge_accuracy(model, tok, w.known(agent)), 3),
        }
    click.echo(json.dumps(report, indent=1))
