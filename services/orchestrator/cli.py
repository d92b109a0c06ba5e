"""`pbt serve orchestrator`: the gRPC debate orchestrator."""

from __future__ import annotations

import click

from services.common.startup import server_options


@click.command("orchestrator")
@server_options(default_port=50051)
@click.option(
    "--progress-interval", type=float, default=1.0, show_default=True, help="Seconds between progress events."
)
def orchestrator(progress_interval: float, **server_flags: object) -> None:
    """Serve pbt.v1.DebateOrchestratorService (with health and reflection) until SIGTERM/SIGINT."""
    from services.common.startup import run_server, settings_from_flags
    from services.orchestrator.server import start_orchestrator

    def start(address, store, config, policy):  # type: ignore[no-untyped-def]
        return start_orchestrator(
            address, store=store, config=config, policy=policy, progress_interval_s=progress_interval
        )

    run_server("orchestrator", settings_from_flags(**server_flags), start)  # type: ignore[arg-type]
