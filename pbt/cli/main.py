"""Entry point of the `pbt` command.

Each subcommand group lives in its own module under `pbt.cli` and is imported only when it is
used, so `pbt --help` stays fast and a group's heavy dependencies (torch, grpc, kserve) load
only for that group. To add a group, add one line to `GROUPS`.
"""

from __future__ import annotations

import importlib
import logging

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
    "world": ("pbt.cli.world", "world", "Build the synthetic persuasion world."),
    "demo": ("pbt.cli.demo", "demo", "Run the whole pipeline on the embedded default."),
    "view": ("pbt.cli.view", "view", "Write an HTML site for trees, pairs, an evaluation or a demo run."),
    "pipeline": ("pbt.cli.pipeline", "pipeline", "The closed retraining loop: render, run, steps."),
    "promote": ("pbt.cli.pipeline", "promote", "Render the GitOps promotion of a passed verdict."),
}


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
        return sorted(GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in GROUPS:
            return None
        module_name, attr, help_text = GROUPS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise

            @click.command(cmd_name, help=f"{help_text} (not available in this build)")
            def unavailable() -> None:
                raise click.ClickException(f"'pbt {cmd_name}' is not available in this build")

            return unavailable
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
