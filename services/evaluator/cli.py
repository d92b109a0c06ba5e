"""`pbt serve evaluator`: the gRPC evaluator."""

from __future__ import annotations

import click

from services.common.startup import server_options


@click.command("evaluator")
@server_options(default_port=50052)
def evaluator(**server_flags: object) -> None:
    """Serve pbt.v1.EvaluatorService (with health and reflection) until SIGTERM/SIGINT."""
    from services.common.startup import run_server, settings_from_flags
    from services.evaluator.server import start_evaluator
    from services.evaluator.servicer import EvaluatorServicer

    def start(address, store, config, policy):  # type: ignore[no-untyped-def]
        return start_evaluator(address, EvaluatorServicer(store=store, policy=policy), config)

    run_server("evaluator", settings_from_flags(**server_flags), start)  # type: ignore[arg-type]
