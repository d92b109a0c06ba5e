"""`pbt serve evaluator --port P`: the evaluator gRPC server until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging

import click

log = logging.getLogger(__name__)


@click.command("evaluator")
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option("--port", default=50052, show_default=True, type=int, help="gRPC port (0: pick a free one).")
@click.option(
    "--store", "store_url", default=None, help="Default results store URL (default: from the environment)."
)
@click.option(
    "--auth-token",
    "auth_tokens",
    multiple=True,
    help="Accepted bearer token (repeatable; also PBT_GRPC_AUTH_TOKENS).",
)
def evaluator(host: str, port: int, store_url: str | None, auth_tokens: tuple[str, ...]) -> None:
    """Serve pbt.v1.EvaluatorService (health and reflection included)."""
    from pbt.store import open_store
    from services.common import ServerConfig, serve_until_signal
    from services.evaluator.server import start_evaluator
    from services.evaluator.servicer import EvaluatorServicer

    async def main() -> None:
        config = ServerConfig.from_env(auth_tokens=list(auth_tokens) or None)
        servicer = EvaluatorServicer(store=open_store(store_url))
        server, bound = await start_evaluator(f"{host}:{port}", servicer, config)
        click.echo(f"evaluator listening on {host}:{bound}", err=True)
        await serve_until_signal(server)

    asyncio.run(main())
