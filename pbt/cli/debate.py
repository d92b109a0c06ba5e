"""`pbt debate run`: one team debate (PBT-METHOD §6d), in process or through an orchestrator."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import click

from pbt.errors import PbtError, ValidationError


@click.group("debate")
def debate() -> None:
    """Run a single team debate."""


def _parse_agent(spec: str) -> tuple[str, str]:
    name, sep, endpoint = spec.partition("=")
    if not sep or not name.strip() or not endpoint.strip():
        raise click.BadParameter(f"expected NAME=ENDPOINT, got {spec!r}", param_hint="--agent")
    return name.strip(), endpoint.strip()


async def _local(
    question: str, agents: list[tuple[str, str]], extractor: str | None, model: dict[str, str], **kw: Any
) -> dict:
    from pbt.backends.factory import agent_backend
    from pbt.config import AgentConfig
    from pbt.debate import DebateAgent, llm_extractor, rules_extractor, run_debate

    backends = []
    try:
        debaters = []
        for i, (name, endpoint) in enumerate(agents):
            backend = agent_backend(f"agents[{i}]", AgentConfig(endpoint=endpoint, model=model.get(name, "")))
            backends.append(backend)
            debaters.append(DebateAgent(name, backend))
        if extractor:
            ex = agent_backend("extractor", AgentConfig(endpoint=extractor))
            backends.append(ex)
            extract = llm_extractor(ex)
        else:
            extract = rules_extractor()
        result = await run_debate(question, debaters, extract=extract, **kw)
    finally:
        for backend in backends:
            await backend.aclose()
    return {
        "turns": [
            {"round": t.round, "agent": t.agent, "answer": t.answer, "text": t.text} for t in result.turns
        ],
        "final_answers": result.final_answers,
        "correct": result.correct,
        "agreed": result.agreed,
    }


async def _remote(
    address: str,
    question: str,
    agents: list[tuple[str, str]],
    extractor: str | None,
    model: dict[str, str],
    token: str | None,
    **kw: Any,
) -> dict:
    from pbt.rpc import OrchestratorClient
    from pbt.v1 import common_pb2, orchestrator_pb2

    request = orchestrator_pb2.RunDebateRequest(
        question=question,
        gold_answers=kw["gold"] or [],
        agents=[
            orchestrator_pb2.DebateAgent(
                name=n, agent=common_pb2.AgentSpec(endpoint=e, model=model.get(n, ""))
            )
            for n, e in agents
        ],
        max_turns=kw["max_turns"],
    )
    if extractor:
        request.extractor.endpoint = extractor
    else:
        request.extraction.mode = orchestrator_pb2.EXTRACTION_MODE_RULES
    async with OrchestratorClient(address, token=token) as orchestrator:
        resp = await orchestrator.run_debate(request)
    return {
        "turns": [
            {"round": t.round, "agent": t.agent, "answer": t.answer, "text": t.text} for t in resp.turns
        ],
        "final_answers": {f.agent: f.answer for f in resp.final_answers},
        "correct": {f.agent: f.correct for f in resp.final_answers if f.HasField("correct")} or None,
        "agreed": resp.agreed,
    }


@debate.command("run")
@click.option("--question", required=True, help="The question to debate.")
@click.option("--gold", multiple=True, help="A gold answer alias (repeat); scores the final answers.")
@click.option(
    "--agent", "agents", multiple=True, required=True, help="NAME=ENDPOINT in speaking order (repeat, >= 2)."
)
@click.option("--model", "models", multiple=True, help="NAME=MODEL: the served model name of an agent.")
@click.option(
    "--extractor", default=None, help="Extractor endpoint (default: parse each turn's 'Final Answer:')."
)
@click.option(
    "--max-turns", type=click.IntRange(0, 16), default=4, show_default=True, help="Discussion turns."
)
@click.option(
    "--max-tokens",
    type=click.IntRange(1),
    default=80,
    show_default=True,
    help="New tokens per turn (greedy).",
)
@click.option(
    "--orchestrator", "address", default=None, help="HOST:PORT: run through the orchestrator's RunDebate."
)
@click.option(
    "--token", default=lambda: os.environ.get("PBT_GRPC_TOKEN"), help="Bearer token [env PBT_GRPC_TOKEN]."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run(
    question: str,
    gold: tuple[str, ...],
    agents: tuple[str, ...],
    models: tuple[str, ...],
    extractor: str | None,
    max_turns: int,
    max_tokens: int,
    address: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Agents answer independently, then discuss in the given order until they agree."""
    import grpc
    from rich.console import Console
    from rich.table import Table

    from pbt.backends.base import SamplingParams

    parsed = [_parse_agent(a) for a in agents]
    model = dict(_parse_agent(m) for m in models)
    try:
        if len(parsed) < 2:
            raise ValidationError("a debate needs at least 2 agents", field="--agent")
        if address:
            result = asyncio.run(
                _remote(
                    address, question, parsed, extractor, model, token, gold=list(gold), max_turns=max_turns
                )
            )
        else:
            sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens)
            result = asyncio.run(
                _local(
                    question,
                    parsed,
                    extractor,
                    model,
                    max_turns=max_turns,
                    sampling=sampling,
                    gold=list(gold) or None,
                )
            )
    except PbtError as exc:
        raise click.ClickException(str(exc)) from exc
    except grpc.aio.AioRpcError as exc:
        raise click.ClickException(f"orchestrator {address}: {exc.code().name}: {exc.details()}") from exc
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = Table("round", "agent", "answer", "text", title=question)
    for t in result["turns"]:
        table.add_row(str(t["round"]), t["agent"], t["answer"], t["text"])
    console = Console()
    console.print(table)
    for name, answer in result["final_answers"].items():
        mark = "" if result["correct"] is None else (" (correct)" if result["correct"][name] else " (wrong)")
        console.print(f"final {name}: {answer}{mark}")
    console.print("agreed" if result["agreed"] else "no agreement")
