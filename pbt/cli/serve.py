"""`pbt serve agent|orchestrator|evaluator`: each server's command lives with its service."""

from __future__ import annotations

import click

from pbt.cli.main import LazyGroup, unavailable_command

SERVERS = {
    "agent": ("services.agent.cli", "agent", "KServe agent model server (OpenAI protocol)."),
    "orchestrator": ("services.orchestrator.cli", "orchestrator", "gRPC debate orchestrator."),
    "evaluator": ("services.evaluator.cli", "evaluator", "gRPC evaluator."),
}


class _ServeGroup(LazyGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SERVERS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        import importlib

        if cmd_name not in SERVERS:
            return None
        module_name, attr, help_text = SERVERS[cmd_name]
        try:
            return getattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return unavailable_command(cmd_name, help_text, f"{module_name} is missing")


@click.group(cls=_ServeGroup)
def serve() -> None:
    """Start a server: agent, orchestrator or evaluator."""
