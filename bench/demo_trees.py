"""The demo's tree stage, on two agent engines side by side (issue #23: "the demo's tree stage is at
least 2x faster than before on the same machine").

One world seed's trained agents from the demo's agent cache (``pbt demo`` builds them; the e2e test's
cache is ``.pbt/test-agent-cache``) and the demo's own tree configuration
(`pbt_world.demo.stages.trees_run_config` with the ``--fast`` or the full settings) are built into
trees by the orchestrator's `TreeJob` in this process, twice:

  baseline  agent servers started from another source tree (``--baseline-src``: an older commit,
            e.g. ``git archive 7dd5767 | tar -x -C /tmp/before``), same virtualenv;
  current   agent servers of this checkout.

Same agents, same questions, same seeds, same orchestrator: only the agent servers differ. Prints
each engine's time, nodes and nodes/s and the ratio. ``--questions N`` builds the trees of the first
N training questions only (all by default). On a busy machine the wall times swing with the other
work; the agent servers' CPU time during the job (from ``/proc``) is printed next to them and moves less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
console = Console()


def find_seed(cache: Path, seed: int) -> tuple[Path, Path]:
    """The world files and the newest agents folder of `seed` in a demo agent cache."""
    worlds = sorted((cache / "world").glob(f"seed{seed}-*"), key=lambda p: p.stat().st_mtime)
    if not worlds:
        raise SystemExit(f"{cache}: no world for seed {seed} (run `pbt demo --fast --seeds {seed}` first)")
    agents = sorted((worlds[-1] / "agents").glob("*/a"), key=lambda p: p.stat().st_mtime)
    if not agents:
        raise SystemExit(f"{worlds[-1]}: no trained agents")
    return worlds[-1] / "files", agents[-1].parent


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux ``/proc``): unlike wall time, it barely
    moves with what else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def agent_server(src: Path, model_dir: Path, name: str, log: Path):  # type: ignore[no-untyped-def]
    """``pbt serve agent`` from the source tree `src`, as the demo starts its agents
    (pbt_world.demo.services.ServiceGroup.start_agent): one thread each."""
    sys.path.append(str(ROOT / "tests"))  # test helpers
    from agent_process import AgentProcess

    return AgentProcess(model_dir, model_name=name, threads=1, extra_args=("--device", "cpu"),
                        log=log.open("w"), src=src, env={"OMP_NUM_THREADS": "1"}, ready_timeout=300)  # fmt: skip


def build(src: Path, files: Path, agents: Path, args: argparse.Namespace, tmp: Path, tag: str) -> dict:
    from pbt.orchestrate import TreeJob
    from pbt.store import LocalStore
    from pbt_world.demo.settings import DemoSettings
    from pbt_world.demo.stages import trees_run_config

    settings = DemoSettings.fast() if args.fast else DemoSettings()
    with (
        agent_server(src, agents / "a" / "model", "a", tmp / f"{tag}-a.log") as a,
        agent_server(src, agents / "b" / "model", "b", tmp / f"{tag}-b.log") as b,
    ):
        config = trees_run_config(
            agent_a=f"{a.url}/openai/v1",
            agent_b=f"{b.url}/openai/v1",
            personas_file=files / "personas.yaml",
            questions_file=files / "questions" / "train.jsonl",
            settings=settings,
            store_url=f"file://{tmp / tag}",
            seed=args.seed,
        )
        job = TreeJob(config, LocalStore(tmp / tag), job_id=f"{tag}-trees", limit=args.questions)
        servers = [a.proc.pid, b.proc.pid]
        cpu = -sum(cpu_seconds(pid) for pid in servers)
        started = time.perf_counter()
        summary = asyncio.run(job.run())
        elapsed = time.perf_counter() - started
        cpu += sum(cpu_seconds(pid) for pid in servers)
    nodes = summary.progress.nodes
    return {
        "trees": summary.progress.trees_done,
        "nodes": nodes,
        "seconds": elapsed,
        "nps": nodes / elapsed,
        "cpu": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cache", type=Path, default=ROOT / ".pbt" / "test-agent-cache", help="demo agent cache"
    )
    parser.add_argument("--seed", type=int, default=0, help="world seed")
    parser.add_argument("--baseline-src", type=Path, help="source tree whose agent server is the baseline")
    parser.add_argument(
        "--questions", type=int, default=None, help="first N training questions (default all)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server logs, trees)")
    parser.add_argument("--full", dest="fast", action="store_false", help="the full demo's tree settings")
    args = parser.parse_args()

    files, agents = find_seed(args.cache, args.seed)
    runs: dict[str, dict] = {}
    tmp = Path(tempfile.mkdtemp(prefix="pbt-bench-demo-trees-"))
    try:
        if args.baseline_src:
            runs["baseline"] = build(args.baseline_src.resolve(), files, agents, args, tmp, "baseline")
            console.log(f"baseline: {runs['baseline']}")
        runs["current"] = build(ROOT, files, agents, args, tmp, "current")
        console.log(f"current: {runs['current']}")
    finally:
        if args.keep:
            console.log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    table = Table(
        title=f"demo tree stage, world seed {args.seed} ({'--fast' if args.fast else 'full'} settings)"
    )
    for column in ("engine", "trees", "nodes", "seconds", "nodes/s", "agent CPU s"):
        table.add_column(column, justify="right")
    for name, r in runs.items():
        table.add_row(
            name,
            str(r["trees"]),
            str(r["nodes"]),
            f"{r['seconds']:.1f}",
            f"{r['nps']:.1f}",
            f"{r['cpu']:.1f}",
        )
    console.print(table)
    if "baseline" in runs:
        ratio = runs["baseline"]["seconds"] / runs["current"]["seconds"]
        cpu_ratio = runs["baseline"]["cpu"] / runs["current"]["cpu"]
        console.print(f"speed-up of the tree stage: {ratio:.2f}x (target >= 2)")
        console.print(f"agent servers' CPU time, baseline / current: {cpu_ratio:.2f}x")


if __name__ == "__main__":
    main()
