"""Orchestrator benchmark: how close tree building comes to the backend's best, and what it costs.

  (a) orchestration efficiency: build trees through the gRPC orchestrator (BuildTrees) against
      the agent server (tiny model over HTTP), recording every generation request; then replay exactly
      those requests as one concurrent batch to a fresh server (its prefix cache empty, as the
      orchestrator's was). efficiency = replay time / orchestrator time (target >= 0.9: the
      dependency structure of trees costs < 10%). Both are preceded by a warm-up tree on a
      question outside the measured ones. The fraction of prompt tokens served from the agent
      server's prefix cache is printed for both (its Prometheus counters).
  (b) against the reference's generation (one request at a time, ``generate(use_cache=False)``)
      on the same tiny model, timed on an evenly spaced sample of the recorded requests and
      extrapolated to all of them (target >= 10x).
  (c) orchestrator CPU per node: the same engine with zero-latency scripted agents (the scripted
      agents' own CPU included, so this is a lower bound on nodes/s per core).

Agent turns are forced to exactly --new-tokens tokens (min_tokens = max_tokens) and seeded, so
the replay does the same work. ``python bench/orchestrator.py --help`` for the sizes; the
defaults (4 questions, the paper's 1-2-3-2 shape, 24 tokens) take 1-2 minutes on a busy 2-core
machine (the reference's sample and the agent servers' start-ups are most of it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pbt.backends.base import ChatBackend, ChatResult, Message, SamplingParams

console = Console()
NQ = Path(__file__).resolve().parent.parent / "examples" / "data" / "nq_open" / "NQ-open.dev.jsonl"


class Recording(ChatBackend):
    """Delegates to a backend and records every request (for the replay)."""

    def __init__(self, inner: ChatBackend, log: list):
        self.inner, self.log, self.name = inner, log, inner.name

    async def chat(self, messages: Sequence[Message], params: SamplingParams) -> ChatResult:
        self.log.append(([dict(m) for m in messages], params))
        return await self.inner.chat(messages, params)

    async def aclose(self) -> None:
        await self.inner.aclose()


def run_config(endpoint: str, dataset: dict, args: argparse.Namespace, questions: int):
    from pbt.config import RunConfig

    agent = {"endpoint": endpoint, "model": "tiny", "max_in_flight": args.max_in_flight}
    return RunConfig.from_dict(
        {
            "agents": {"a": agent, "b": agent, "extractor": agent},
            "sampling": {"max_tokens": args.new_tokens, "min_tokens": args.new_tokens, "seed": 1},
            "extraction": {"mode": "llm", "max_tokens": 4},
            "tree": {"max_turns": args.max_turns},
            "dataset": dataset,
            "max_trees_in_flight": questions,
        }
    )


WARM_UP = {
    "format": "inline",
    "questions": [{"id": "warm", "question": "Who wrote the warm-up question?", "answers": ["nobody"]}],
}


def prefix_counters(url: str) -> tuple[float, float]:
    """The agent server's prompt tokens and, of those, tokens served from its prefix cache."""
    import httpx

    values = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("pbt_agent_prompt_tokens_total", "pbt_agent_prompt_tokens_cached_total"):
            values[name] = float(value)
    return values.get("pbt_agent_prompt_tokens_total", 0.0), values.get(
        "pbt_agent_prompt_tokens_cached_total", 0.0
    )


def hit_fraction(before: tuple[float, float], after: tuple[float, float]) -> float:
    prompt = after[0] - before[0]
    return (after[1] - before[1]) / prompt if prompt else 0.0


def dataset_spec() -> dict:
    """The NQ-open excerpt vendored in the repository (examples/data: its first 200 questions)."""
    return {"format": "nq_open", "path": str(NQ)}


async def orchestrate(config, store, limit: int, log: list) -> tuple[float, int]:
    """Build trees through the gRPC orchestrator (in this process, on a free port), recording requests."""
    from pbt.backends.factory import agent_backend
    from pbt.rpc import OrchestratorClient
    from services.common.policy import RequestPolicy
    from services.orchestrator.server import start_orchestrator

    # the operator's request policy of this benchmark: the agent server on loopback, the NQ file
    policy = RequestPolicy(agent_url_prefixes=["http://127.0.0.1:"], data_roots=[NQ.parent])
    server, port = await start_orchestrator(
        store=store,
        backend_factory=lambda role, agent: Recording(agent_backend(role, agent), log),
        policy=policy,
    )
    try:
        async with OrchestratorClient(f"127.0.0.1:{port}") as orchestrator:
            started = time.perf_counter()
            stream = orchestrator.build_trees(config, job_id=f"bench-{time.time_ns()}", limit=limit)
            events = [event async for event in stream]
            elapsed = time.perf_counter() - started
    finally:
        await server.stop(0)
    return elapsed, events[-1].summary.progress.nodes


async def replay(endpoint: str, requests: list, max_in_flight: int) -> float:
    from pbt.backends.http import HttpBackend

    backend = HttpBackend(endpoint, "tiny", max_concurrency=max_in_flight)
    try:
        started = time.perf_counter()
        await asyncio.gather(*(backend.chat(m, p) for m, p in requests))
        return time.perf_counter() - started
    finally:
        await backend.aclose()


def reference_seconds(model_dir: Path, requests: list, sample: int) -> float:
    """Seconds the reference's way would take for all `requests` (timed on an even sample)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    step = max(1, len(requests) // sample)
    picked = requests[::step][:sample]
    elapsed = 0.0
    with torch.inference_mode():
        for messages, params in picked:
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            enc = tok(text, add_special_tokens=False, return_tensors="pt")
            kwargs = dict(max_new_tokens=params.max_tokens, min_new_tokens=params.min_tokens, use_cache=False)
            kwargs.update(do_sample=False) if params.temperature == 0 else kwargs.update(
                do_sample=True, temperature=params.temperature, top_p=params.top_p
            )
            started = time.perf_counter()
            model.generate(**enc, **kwargs, pad_token_id=tok.pad_token_id or tok.eos_token_id)
            elapsed += time.perf_counter() - started
    return elapsed / len(picked) * len(requests)


def cpu_per_node(questions: int) -> tuple[int, float, float]:
    from pbt.backends.scripted import ScriptedBackend
    from pbt.config import RunConfig
    from pbt.orchestrate import TreeJob
    from pbt.store import LocalStore

    qs = [
        {"id": f"q{i}", "question": f"({i}) capital of France?", "answers": ["Paris"]}
        for i in range(questions)
    ]
    backends = {
        "a": ScriptedBackend({"capital of France": "Paris"}),
        "b": ScriptedBackend({"capital of France": "Lyon"}),
        "extractor": ScriptedBackend(),
    }
    config = RunConfig.from_dict(
        {
            "agents": {r: {"endpoint": f"scripted:{r}", "max_in_flight": 256} for r in backends},
            "dataset": {"format": "inline", "questions": qs},
            "max_trees_in_flight": 64,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        job = TreeJob(config, LocalStore(tmp), job_id="cpu", backend_factory=lambda role, _: backends[role])
        cpu0, wall0 = time.process_time(), time.perf_counter()
        summary = asyncio.run(job.run())
        return summary.progress.nodes, time.process_time() - cpu0, time.perf_counter() - wall0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=4, help="Trees for (a) and (b).")
    parser.add_argument(
        "--max-turns", type=int, default=4, help="Tree depth (branching follows the personas: 1-2-3-2)."
    )
    parser.add_argument("--new-tokens", type=int, default=24, help="Tokens per agent turn (forced).")
    parser.add_argument(
        "--max-in-flight", type=int, default=64, help="Requests in flight to the agent server."
    )
    parser.add_argument(
        "--reference-sample", type=int, default=12, help="Requests timed for the reference baseline."
    )
    parser.add_argument(
        "--max-batch-size", type=int, default=32, help="The agent server's --max-batch-size (rows)."
    )
    parser.add_argument(
        "--server-threads",
        type=int,
        default=0,
        help="The agent server's --threads (default 0: the engine's own choice; the reference uses 2).",
    )
    parser.add_argument("--cpu-questions", type=int, default=200, help="Trees for (c).")
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="Tiny model folder (default: build one)."
    )
    args = parser.parse_args()
    available = sum(1 for line in NQ.open() if line.strip())
    if args.questions > available:
        parser.error(f"--questions {args.questions}: {NQ.name} in examples/data has {available} questions")
    logging.basicConfig(level=logging.WARNING)

    import torch

    from pbt.store import LocalStore

    sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))  # test helpers
    from agent_process import AgentProcess

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            from pbt.models.tiny import build_tiny_model

            model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0)
        server_args = ("--max-batch-size", str(args.max_batch_size))
        threads = args.server_threads or None  # None: the engine's own choice
        log: list = []
        with AgentProcess(model_dir, model_name="tiny", threads=threads, extra_args=server_args) as agent:
            config = run_config(agent.openai_url, dataset_spec(), args, args.questions)
            # warm-up: one small job on a question outside the measured ones, so the measured run
            # finds a warm server but none of its prompts in the prefix cache
            warm = run_config(agent.openai_url, WARM_UP, args, 1)
            asyncio.run(orchestrate(warm, LocalStore(Path(tmp) / "warm"), 1, []))
            before = prefix_counters(agent.url)
            t_orch, nodes = asyncio.run(
                orchestrate(config, LocalStore(Path(tmp) / "store"), args.questions, log)
            )
            hits_orch = hit_fraction(before, prefix_counters(agent.url))
        # the replay gets a fresh server (same warm-up): its prefix cache holds none of the prompts
        with AgentProcess(model_dir, model_name="tiny", threads=threads, extra_args=server_args) as agent:
            warm = run_config(agent.openai_url, WARM_UP, args, 1)
            asyncio.run(orchestrate(warm, LocalStore(Path(tmp) / "warm2"), 1, []))
            before = prefix_counters(agent.url)
            t_replay = asyncio.run(replay(agent.openai_url, log, args.max_in_flight))
            hits_replay = hit_fraction(before, prefix_counters(agent.url))
        t_ref = reference_seconds(model_dir, log, args.reference_sample)
    cpu_nodes, cpu_s, cpu_wall = cpu_per_node(args.cpu_questions)

    table = Table("measure", "value", "target", title="bench/orchestrator.py (tiny model, this machine)")
    table.add_row("trees / nodes / generation requests", f"{args.questions} / {nodes} / {len(log)}", "")
    table.add_row("orchestrator wall time", f"{t_orch:.2f} s ({nodes / t_orch:.1f} nodes/s)", "")
    table.add_row(
        "prefix cache: prompt tokens served from cache",
        f"{hits_orch:.1%} (orchestrator), {hits_replay:.1%} (replay)",
        "",
    )
    table.add_row("replay of the same requests as one batch", f"{t_replay:.2f} s", "")
    table.add_row(
        "(a) orchestration efficiency = replay / orchestrator", f"{t_replay / t_orch:.2f}", ">= 0.9"
    )
    table.add_row(
        "reference (sequential, no KV cache), extrapolated",
        f"{t_ref:.1f} s from {min(args.reference_sample, len(log))} timed",
        "",
    )
    table.add_row("(b) speed-up over the reference", f"{t_ref / t_orch:.1f}x", ">= 10x")
    table.add_row(
        "(c) orchestrator CPU, zero-latency scripted agents",
        f"{cpu_nodes / cpu_s:,.0f} nodes/s per core ({cpu_nodes} nodes, {cpu_s:.2f} s CPU, {cpu_wall:.2f} s wall)",
        "",
    )
    console.print(table)


if __name__ == "__main__":
    main()
