"""Entry point of the `pbt` command.

Each subcommand group lives in its own module under `pbt.cli` and is imported only when it is
used, so `pbt --help` stays fast and a group's heavy dependencies (torch, grpc, kserve) load
only for that group. To add a group, add one line to `GROUPS`. Commands from other installed
packages (the demo world's `pbt demo` and `pbt world`) register in the ``pbt.commands`` entry point
group and load the same way, by name, without a static import.
"""

from __future__ import annotations

import functools
import importlib
import logging
from importlib.metadata import EntryPoint, entry_points

import click

# name -> (module, attribute, one-line help)
GROUPS: dict[str, tuple[str, str, str]] = {
    "trees": ("pbt.cli.trees", "trees", "Build, convert and inspect dialogue trees."),
    "prefs": ("pbt.cli.prefs", "prefs", "Turn dialogue trees into preference pairs."),
    "models": ("pbt.cli.models", "models", "Build tiny offline models."),
    "serve": ("pbt.cli.serve", "serve", "Start a server: agent, orchestrator or evaluator."),
    "debate": ("pbt.cli.debate", "debate", "Run a single team debate."),
    "train": ("pbt.cli.train", "train", "SFT/DPO training and PyTorchJob submission."),
    "eval": ("pbt.cli.eval", "eval_group", "Run persuasion evaluations and print reports."),
    "view": ("pbt.cli.view", "view", "Write an HTML site for trees, pairs, an evaluation or a demo run."),
    "pipeline": ("pbt.cli.pipeline", "pipeline", "The closed retraining loop: render, run, steps."),
    "promote": ("pbt.cli.pipeline", "promote", "Render the GitOps promotion of a passed verdict."),
}

PLUGIN_GROUP = "pbt.commands"


@functools.cache
def plugin_commands() -> dict[str, EntryPoint]:
    """name -> entry point of the installed packages' `pbt` subcommands (built-in names win)."""
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name not in GROUPS}


def unavailable_command(name: str, help_text: str, reason: str) -> click.Command:
    @click.command(
        name,
        help=f"{help_text} (not available in this build)",
        context_settings={"ignore_unknown_options": True},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def unavailable(args: tuple[str, ...]) -> None:
        raise click.ClickException(f"'pbt {name}' is not available in this build: {reason}")

    return unavailable


def _load_plugin(name: str, ep: EntryPoint) -> click.Command:
    try:
        return ep.load()
    except ModuleNotFoundError as exc:
        if exc.name is None or not f"{ep.module}.".startswith(f"{exc.name}."):
            raise
        return unavailable_command(
            name,
            f"Provided by {ep.value}.",
            f"{ep.value} (entry point group {PLUGIN_GROUP!r}) is not installed ({exc}); "
            "install the repository's packages with `make setup` or `pip install -e .`",
        )


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        """Run the subcommand; the project's errors and file system errors that escape it become
        one line (``Error: ...``, exit 1) instead of a traceback."""
        from pbt.errors import PbtError

        try:
            return super().invoke(ctx)
        except PbtError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = exc.filename if exc.filename is not None else ""
            raise click.ClickException(f"{where}: {exc.strerror or exc}" if where else str(exc)) from None
        except UnicodeDecodeError as exc:
            raise click.ClickException(f"input is not UTF-8 text (byte {exc.start})") from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*GROUPS, *plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in GROUPS:
            ep = plugin_commands().get(cmd_name)
            return None if ep is None else _load_plugin(cmd_name, ep)
        module_name, attr, help_text = GROUPS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return unavailable_command(cmd_name, help_text, f"{module_name} is missing")
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="pbt")
def cli(verbose: int) -> None:
    """Persuasion-Balanced Training: debate trees, balanced preference pairs, DPO, evaluations."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="pbt")


if __name__ == "__main__":
    main()
