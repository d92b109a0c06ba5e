"""`pbt demo`: the whole PBT pipeline on the synthetic world, through the real services."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

log = logging.getLogger(__name__)


def _seeds(value: str) -> list[int]:
    try:
        seeds = [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"expected distinct seeds, got {value!r}")
    return seeds


def _set_values(values: tuple[str, ...]) -> dict:
    """``("agent.precision=bf16-mixed", "pbt_balance=position")`` -> a nested dict (YAML values)."""
    import yaml

    out: dict = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE (dotted key), got {item!r}", param_hint="--set")
        node = out
        *parents, leaf = key.strip().split(".")
        for name in parents:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise click.BadParameter(f"{key!r} sets inside a value set earlier", param_hint="--set")
        node[leaf] = yaml.safe_load(raw)
    return out


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@click.command("demo")
@click.option(
    "--seeds", default="0", show_default=True, help="World seeds, comma-separated (each a full run)."
)
@click.option(
    "--questions", type=int, default=None, help="Tree questions per seed (default: every train fact)."
)
@click.option("--eval-questions", type=int, default=None, help="Items per evaluation suite (default: all).")
@click.option("--fast", is_flag=True, help="Reduced run (40-fact world, short training, few questions).")
@click.option(
    "--run-id",
    default=None,
    help="Names the report folder demo/<run-id>/ (default: demo-<UTC time>; reuse one to resume).",
)
@click.option(
    "--work",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".pbt/demo"),
    show_default=True,
    help="Local working folder (logs, model copies).",
)
@click.option(
    "--store", "store_url", default=None, help="Object store URL (default: S3_ENDPOINT, PBT_STORE, ./store)."
)
@click.option(
    "--agent-cache",
    "agent_cache_url",
    default=None,
    help="Store caching trained world agents (default: --store).",
)
@click.option(
    "--set",
    "set_values",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any demo setting by its dotted path (repeatable; YAML values), e.g. "
    "--set agent.precision=fp32 --set pbt_balance=position --set dpo.epochs=3.",
)
def demo(
    seeds: str,
    questions: int | None,
    eval_questions: int | None,
    fast: bool,
    run_id: str | None,
    work: Path,
    store_url: str | None,
    agent_cache_url: str | None,
    set_values: tuple[str, ...],
) -> None:
    """Build (or reuse) the world, train its agents, then through the gRPC services: trees, pairs,
    DPO (accept / resist / PBT) under torchrun, the four suites, and the report in the store."""
    import time

    from rich.console import Console

    from pbt.errors import PbtError
    from pbt_world.demo.pipeline import run_demo
    from pbt_world.demo.settings import DemoSettings

    run_id = run_id or time.strftime("demo-%Y%m%d-%H%M%S", time.gmtime())
    overrides = {
        "seeds": _seeds(seeds),
        "questions": questions,
        "eval_questions": eval_questions,
        "run_id": run_id,
        "work": work,
        "store_url": store_url,
        "agent_cache_url": agent_cache_url,
    }
    from pydantic import ValidationError as PydanticValidationError

    from pbt.errors import from_pydantic

    settings = (
        DemoSettings.fast(**overrides)
        if fast
        else DemoSettings(**{k: v for k, v in overrides.items() if v is not None})
    )
    if set_values:
        try:
            settings = DemoSettings.model_validate(_merge(settings.model_dump(), _set_values(set_values)))
        except PydanticValidationError as exc:
            err = from_pydantic(exc)
            raise click.BadParameter(f"{err.field}: {err.message}", param_hint="--set") from None
    import signal

    # SIGTERM (and SIGINT where a background shell ignores it) end the run through the normal
    # exit path, so the servers started so far are stopped rather than left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    console = Console()
    try:
        doc = run_demo(settings, console)
    except PbtError as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        sys.exit(1)
    from pbt.view.terminal import demo_site, print_demo

    print_demo(console, doc)  # rich tables (report.md keeps the Markdown)
    click.echo(f"report: {doc['report_uri']}")
    click.echo(demo_site(settings.store_url, settings.run_id))  # the HTML site beside report.md
