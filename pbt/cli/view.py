"""`pbt view`: write a static HTML site for a tree job, a preference output, an evaluation or a demo run."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from pbt.errors import PbtError

KINDS = ("trees", "prefs", "eval", "demo")


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator:
    """A rich progress bar fed by the site writers' ``progress(stage, done, total)`` callback."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not enabled, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def default_prefix(kind: str, item_id: str) -> str:
    """Where ``--to-store`` puts a site when no prefix is given."""
    return {
        "trees": f"trees/{item_id}/_site",
        "prefs": f"prefs/{item_id}/site",
        "eval": f"results/{item_id}/site",
        "demo": f"demo/{item_id}/site",
    }[kind]


def build_site(store, kind: str, item_id: str, out: Path, progress=None):
    from pbt.view import site as S

    if kind == "trees":
        return S.write_trees_site(store, item_id, out, progress=progress)
    if kind == "prefs":
        return S.write_prefs_site(store, item_id, out, progress=progress)
    if kind == "eval":
        return S.write_eval_site(store, item_id, out, progress=progress)
    return S.write_demo_site(store, item_id, out, progress=progress)


def _command(kind: str, what: str) -> click.Command:
    @click.command(
        kind, help=f"Write the site of {what} ITEM_ID to --out (and/or into the store with --to-store)."
    )
    @click.argument("item_id")
    @click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder to write the site into (default: a temporary folder when --to-store, else ./view-<id>).",
    )
    @click.option(
        "--store",
        "store_url",
        default=None,
        help="Object store URL (default: S3_ENDPOINT, PBT_STORE, ./store).",
    )
    @click.option(
        "--to-store",
        is_flag=True,
        help=f"Also upload the site into the store (under --prefix; default {default_prefix(kind, '<id>')}).",
    )
    @click.option("--prefix", default=None, help="Store prefix for --to-store.")
    @click.option("--quiet", is_flag=True, help="No progress bar; print only the entry page's path.")
    def command(
        item_id: str, out: Path | None, store_url: str | None, to_store: bool, prefix: str | None, quiet: bool
    ) -> None:
        from pbt.store import open_store
        from pbt.view.site import publish

        temporary = out is None and to_store
        with contextlib.ExitStack() as stack:
            if out is None:
                if to_store:
                    out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pbt-view-")))
                else:
                    out = Path(f"view-{item_id}")
            try:
                store = open_store(store_url)
                with progress_bar(not quiet) as update:
                    site = build_site(store, kind, item_id, out, progress=update)
                uri = publish(store, site, prefix or default_prefix(kind, item_id)) if to_store else None
            except PbtError as exc:
                raise click.ClickException(str(exc)) from None
            if quiet:
                click.echo(uri or site.index.resolve())
                return
            for note in site.notes:
                click.echo(note, err=True)
            if not temporary:  # a kept folder: say where it is
                click.echo(f"site: {site.index.resolve()}")
            if uri:
                click.echo(f"site in the store: {uri}")

    return command


@click.group("view")
def view() -> None:
    """Write a static HTML site (no server, no CDN; opens from file:// or the object store)."""


view.add_command(_command("trees", "tree job"))
view.add_command(_command("prefs", "preference output (prefs/<id>/)"))
view.add_command(_command("eval", "evaluation (results/<id>/)"))
view.add_command(_command("demo", "demo run (demo/<id>/)"))
