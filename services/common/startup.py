"""The command line of every pbt gRPC server (``pbt serve orchestrator``, ``pbt serve evaluator``):
the same flags, the same environment, one startup.

Flags win over the environment: transport settings from ``PBT_GRPC_*`` (`ServerConfig`), the
request policy from ``PBT_POLICY_*`` (`RequestPolicy`), the store from the store's variables
(`pbt.store.open_store`). A server module gives `run_server` a function that starts its service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from services.common.config import ServerConfig
from services.common.policy import RequestPolicy, policy_from_flags, policy_options
from services.common.server import ManagedServer, serve_until_signal

log = logging.getLogger(__name__)

#: starts a service: (address, the server's store, settings, policy) -> (server, bound port)
Start = Callable[[str, Any, ServerConfig, RequestPolicy], Awaitable[tuple[ManagedServer, int]]]


@dataclass(frozen=True)
class ServerSettings:
    """Everything a server's command line decides."""

    host: str
    port: int
    store_url: str | None
    config: ServerConfig
    policy: RequestPolicy

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def server_options(default_port: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The flags of every gRPC server; the command receives them as ``**server_flags`` for
    `settings_from_flags`."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        path = click.Path(exists=True, dir_okay=False)
        options = [
            click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on."),
            click.option(
                "--port",
                default=default_port,
                show_default=True,
                type=int,
                help="Port (0: a free port, printed).",
            ),
            click.option(
                "--store",
                "store_url",
                default=None,
                help="The server's object store (path, file://, s3://); else env.",
            ),
            click.option(
                "--grace",
                "grace_s",
                type=float,
                default=None,
                help="Shutdown grace seconds [env PBT_GRPC_GRACE_S, 10].",
            ),
            click.option(
                "--max-message-bytes",
                type=int,
                default=None,
                help="Message size limit [env PBT_GRPC_MAX_MESSAGE_BYTES, 64 MiB].",
            ),
            click.option(
                "--auth-token",
                "auth_tokens",
                multiple=True,
                help="Accepted bearer token (repeat) [env PBT_GRPC_AUTH_TOKENS].",
            ),
            click.option(
                "--tls-cert",
                "tls_cert_file",
                type=path,
                default=None,
                help="PEM certificate chain [env PBT_GRPC_TLS_CERT_FILE].",
            ),
            click.option(
                "--tls-key",
                "tls_key_file",
                type=path,
                default=None,
                help="PEM private key [env PBT_GRPC_TLS_KEY_FILE].",
            ),
            click.option(
                "--tls-client-ca",
                "tls_client_ca_file",
                type=path,
                default=None,
                help="Require client certs [env PBT_GRPC_TLS_CLIENT_CA_FILE].",
            ),
            click.option(
                "--log-level",
                type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
                default=None,
                help="Log level [env PBT_GRPC_LOG_LEVEL, INFO].",
            ),
        ]
        command = policy_options(command)
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def settings_from_flags(
    host: str,
    port: int,
    store_url: str | None = None,
    grace_s: float | None = None,
    max_message_bytes: int | None = None,
    auth_tokens: Sequence[str] = (),
    tls_cert_file: str | None = None,
    tls_key_file: str | None = None,
    tls_client_ca_file: str | None = None,
    log_level: str | None = None,
    **policy_flags: Any,
) -> ServerSettings:
    """The settings of a server started from the command line: environment, then the flags."""
    from pydantic import ValidationError as PydanticValidationError

    from pbt.errors import from_pydantic

    try:
        config = ServerConfig.from_env(
            grace_s=grace_s,
            max_message_bytes=max_message_bytes,
            auth_tokens=list(auth_tokens) or None,
            tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file,
            tls_client_ca_file=tls_client_ca_file,
            log_level=log_level,
        )
    except PydanticValidationError as exc:
        err = from_pydantic(exc)
        raise click.BadParameter(f"{err.field}: {err.message}" if err.field else err.message) from None
    return ServerSettings(host, port, store_url, config, policy_from_flags(**policy_flags))


def configure_logging(level: str | None) -> None:
    """Set the process's log level: `level`, or INFO unless ``pbt -v`` asked for more."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(level if level is not None else min(logging.INFO, root.level or logging.INFO))


def run_server(name: str, settings: ServerSettings, start: Start) -> None:
    """Open the store, start the service with `start`, say where it listens, serve until
    SIGTERM/SIGINT (then stop gracefully). `pbt.errors.PbtError` become click errors."""
    from pbt.errors import PbtError
    from pbt.store import open_store

    configure_logging(settings.config.log_level)

    async def main() -> None:
        store = open_store(settings.store_url)
        server, port = await start(settings.address, store, settings.config, settings.policy)
        log.info("%s listening on port %d (store %s)", name, port, store.url)
        click.echo(f"pbt {name} listening on {settings.host}:{port} (store {store.url})", err=True)
        await serve_until_signal(server)

    try:
        asyncio.run(main())
    except PbtError as exc:
        raise click.ClickException(str(exc)) from exc
