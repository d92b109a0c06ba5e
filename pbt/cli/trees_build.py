"""`pbt trees build`: build dialogue trees for a dataset, in process or through an orchestrator."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click

from pbt.errors import PbtError


class _Bar:
    """A rich progress bar fed by job events (local `pbt.orchestrate` events or their gRPC form)."""

    def __init__(self, console: Any):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]trees"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("trees", total=None, rate="")
        self.nodes = 0

    def started(self, total: int, skipped: int) -> None:
        self.progress.update(self.task, total=total, completed=skipped)

    def tree(self, nodes: int) -> None:
        self.nodes += nodes
        self.progress.advance(self.task)

    def rate(self, nodes_per_second: float, tokens: int) -> None:
        self.progress.update(self.task, rate=f"{nodes_per_second:,.1f} nodes/s  {tokens:,} tokens")


async def _run_local(
    config: Any, job_id: str | None, shard: Any, limit: int | None, bar: _Bar
) -> tuple[str, str, int]:
    from pbt.orchestrate import JobStarted, Progress, Summary, TreeBuilt, TreeJob

    store = await asyncio.to_thread(config.store.open)
    job = TreeJob(config, store, job_id=job_id, shard=shard, limit=limit)
    async for event in job.events():
        if isinstance(event, JobStarted):
            bar.started(event.trees_total, event.trees_skipped)
        elif isinstance(event, TreeBuilt):
            bar.tree(event.nodes)
        elif isinstance(event, Progress):
            bar.rate(event.nodes_per_second, event.prompt_tokens + event.completion_tokens)
        elif isinstance(event, Summary):
            return event.output_uri, event.manifest_uri, event.progress.trees_done
    raise RuntimeError("the job ended without a summary")


async def _run_remote(
    config: Any,
    address: str,
    job_id: str | None,
    shard: str,
    limit: int | None,
    token: str | None,
    tls_ca: str | None,
    bar: _Bar,
) -> tuple[str, str, int]:
    from pbt.rpc import OrchestratorClient

    async with OrchestratorClient(address, token=token, tls_ca_file=tls_ca) as orchestrator:
        async for event in orchestrator.build_trees(config, job_id=job_id or "", shard=shard, limit=limit):
            kind = event.WhichOneof("event")
            if kind == "started":
                bar.started(event.started.trees_total, event.started.trees_skipped)
            elif kind == "tree":
                bar.tree(event.tree.nodes)
            elif kind == "progress":
                usage = event.progress.usage
                bar.rate(event.progress.nodes_per_second, usage.prompt_tokens + usage.completion_tokens)
            elif kind == "summary":
                s = event.summary
                return s.output_uri, s.manifest_uri, s.progress.trees_done
    raise RuntimeError("the orchestrator ended the stream without a summary")


def inline_questions(config: Any, limit: int | None) -> Any:
    """The config with its dataset read here and carried inline (ids, questions, gold answers kept)."""
    from pbt.config import DatasetConfig, InlineQuestion
    from pbt.datasets import load_questions

    questions = load_questions(config.dataset, limit=limit)
    dataset = DatasetConfig(
        format="inline",
        name=config.dataset.display_name,
        questions=[InlineQuestion(id=q.id, question=q.text, answers=q.gold) for q in questions],
    )
    return config.model_copy(update={"dataset": dataset})


@click.command("build")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Run config YAML.",
)
@click.option(
    "--orchestrator",
    "address",
    default=lambda: os.environ.get("PBT_ORCHESTRATOR"),
    help="HOST:PORT of `pbt serve orchestrator` [env PBT_ORCHESTRATOR].",
)
@click.option("--local", is_flag=True, help="Build in this process (the default without --orchestrator).")
@click.option(
    "--shard",
    default="",
    help="Build only shard i of N ('i/N', 0-based), e.g. a Kubernetes Indexed Job's index.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=0,
    help="Only the first K questions (before sharding); 0: all.",
)
@click.option(
    "--job-id", default=None, help="Names trees/{job_id}/ in the store; reuse it to resume (default: new id)."
)
@click.option(
    "--token", default=lambda: os.environ.get("PBT_GRPC_TOKEN"), help="Bearer token [env PBT_GRPC_TOKEN]."
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CA bundle for a TLS orchestrator.",
)
@click.option(
    "--send-questions",
    is_flag=True,
    help="With --orchestrator: read the dataset here and send the questions in the request "
    "(for files the server cannot see).",
)
def build(
    config_path: Path,
    address: str | None,
    local: bool,
    shard: str,
    limit: int,
    job_id: str | None,
    token: str | None,
    tls_ca: str | None,
    send_questions: bool,
) -> None:
    """Build one dialogue tree per question of the config's dataset, with a live progress bar.

    Prints where the trees went (store URI and manifest). Re-running with the same --job-id
    skips the questions already built.
    """
    import grpc
    from rich.console import Console

    from pbt.config import RunConfig
    from pbt.datasets import Shard

    console = Console(stderr=True)
    if local and address:
        raise click.UsageError("give either --orchestrator or --local, not both")
    try:
        config = RunConfig.from_yaml(config_path)
        if config.dataset is None:
            raise click.UsageError(f"{config_path}: the config needs a 'dataset' section to build trees")
        shard_spec = Shard.parse(shard, field="--shard")
        if send_questions:
            if not address:
                raise click.UsageError("--send-questions needs --orchestrator")
            config = inline_questions(config, limit or None)
        bar = _Bar(console)
        with bar.progress:
            if address:
                result = asyncio.run(_run_remote(config, address, job_id, shard, limit, token, tls_ca, bar))
            else:
                result = asyncio.run(_run_local(config, job_id, shard_spec, limit or None, bar))
    except PbtError as exc:
        raise click.ClickException(str(exc)) from exc
    except grpc.aio.AioRpcError as exc:
        raise click.ClickException(f"orchestrator {address}: {exc.code().name}: {exc.details()}") from exc
    output_uri, manifest_uri, done = result
    click.echo(f"{done} trees in {output_uri}")
    click.echo(f"manifest: {manifest_uri}")
