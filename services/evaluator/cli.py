"""`pbt serve evaluator --port P`: the evaluator gRPC server until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging

import click

from services.common.policy import policy_options

log = logging.getLogger(__name__)


@click.command("evaluator")
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option("--port", default=50052, show_default=True, type=int, help="gRPC port (0: pick a free one).")
@click.option(
    "--store",
    "store_url",
    default=None,
    help="The server's results store URL (default: from the environment).",
)
@click.option(
    "--auth-token",
    "auth_tokens",
    multiple=True,
    help="Accepted bearer token (repeatable; also PBT_GRPC_AUTH_TOKENS).",
)
@click.option("--grace", type=float, default=None, help="Shutdown grace seconds [env PBT_GRPC_GRACE_S, 10].")
@policy_options
def evaluator(
    host: str,
    port: int,
    store_url: str | None,
    auth_tokens: tuple[str, ...],
    grace: float | None,
    **policy_flags: object,
) -> None:
    """Serve pbt.v1.EvaluatorService (health and reflection included)."""
    from pbt.store import open_store
    from services.common import ServerConfig, serve_until_signal
    from services.common.policy import policy_from_flags
    from services.evaluator.server import start_evaluator
    from services.evaluator.servicer import EvaluatorServicer

    policy = policy_from_flags(**policy_flags)  # type: ignore[arg-type]

    async def main() -> None:
        config = ServerConfig.from_env(auth_tokens=list(auth_tokens) or None, grace_s=grace)
        servicer = EvaluatorServicer(store=open_store(store_url), policy=policy)
        server, bound = await start_evaluator(f"{host}:{port}", servicer, config)
        click.echo(f"evaluator listening on {host}:{bound}", err=True)
        await serve_until_signal(server)

    asyncio.run(main())
