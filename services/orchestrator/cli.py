"""`pbt serve orchestrator`: the gRPC debate orchestrator."""

from __future__ import annotations

import asyncio

import click

from services.common.policy import policy_options


@click.command("orchestrator")
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option("--port", default=50051, show_default=True, type=int, help="Port (0: a free port, printed).")
@click.option(
    "--store", "store_url", default=None, help="The server's object store (path, file://, s3://); else env."
)
@click.option("--grace", type=float, default=None, help="Shutdown grace seconds [env PBT_GRPC_GRACE_S, 10].")
@click.option("--max-message-bytes", type=int, default=None, help="Message size limit [64 MiB].")
@click.option(
    "--auth-token",
    "auth_tokens",
    multiple=True,
    help="Accepted bearer token (repeat) [env PBT_GRPC_AUTH_TOKENS].",
)
@click.option(
    "--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM certificate chain."
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM private key."
)
@click.option(
    "--tls-client-ca",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Require client certs.",
)
@policy_options
@click.option(
    "--progress-interval", type=float, default=1.0, show_default=True, help="Seconds between progress events."
)
def orchestrator(
    host: str,
    port: int,
    store_url: str | None,
    grace: float | None,
    max_message_bytes: int | None,
    auth_tokens: tuple[str, ...],
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    progress_interval: float,
    **policy_flags: object,
) -> None:
    """Serve pbt.v1.DebateOrchestratorService (with health and reflection) until SIGTERM/SIGINT."""
    from pbt.errors import PbtError
    from services.common import ServerConfig
    from services.common.policy import policy_from_flags
    from services.orchestrator.server import serve

    try:
        config = ServerConfig.from_env(
            grace_s=grace,
            max_message_bytes=max_message_bytes,
            auth_tokens=list(auth_tokens) or None,
            tls_cert_file=tls_cert,
            tls_key_file=tls_key,
            tls_client_ca_file=tls_client_ca,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    policy = policy_from_flags(**policy_flags)  # type: ignore[arg-type]
    try:
        asyncio.run(
            serve(
                f"{host}:{port}",
                store_url=store_url,
                config=config,
                progress_interval_s=progress_interval,
                policy=policy,
                on_ready=lambda bound, store: click.echo(
                    f"pbt orchestrator listening on {host}:{bound} (store {store})", err=True
                ),
            )
        )
    except PbtError as exc:
        raise click.ClickException(str(exc)) from exc
