"""The terminal side of long jobs and reports: one progress bar with a task per stage (fed by
the library's ``progress(stage, done, total)`` callbacks), the report tables as rich tables (not
Markdown that wraps), and the site hooks that `pbt eval run` and `pbt demo` call to write their
site beside report.md."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pbt.store import ObjectStore
from pbt.view import model as M

log = logging.getLogger(__name__)


@contextlib.contextmanager
def stage_progress(
    console: Console, *, enabled: bool = True, transient: bool = False
) -> Iterator[Callable[[str, float, float], None]]:
    """Yields ``update(stage, done, total)``: the first call of a stage adds its bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not enabled, transient=transient) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def eval_rich_tables(doc: Mapping[str, Any]) -> list[Table]:
    """Tables 1-3 and the team-debate table of a summary document as rich tables."""
    out = []
    for t in M.eval_tables(doc):
        table = Table(title=t["title"], title_justify="left", show_lines=False)
        for i, h in enumerate(t["header"]):
            left = i == 0 or (t["id"] == "team_debate" and i == 1)
            table.add_column(h, justify="left" if left else "right")
        for row in t["rows"]:
            table.add_row(*(c.get("text", "") for c in row))
        out.append(table)
    return out


def print_table(console: Console, table: Table) -> None:
    """A table at its natural width when the output is not a terminal (a log or a pipe keeps one
    row per line); in a terminal rich fits it to the window, wrapping inside cells."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.measure(table, options=console.options.update_width(10_000)).maximum
    old = console.width
    console.width = max(width, old)  # (print's own width= is capped at the console's width)
    try:
        console.print(table)
    finally:
        console.width = old


def print_eval(console: Console, doc: Mapping[str, Any]) -> None:
    console.print(
        f"[bold]Evaluation {doc.get('eval_id')}[/bold]: state {doc.get('state')}, seeds {doc.get('seeds')}; "
        "cells: mean ± std over seeds [95% bootstrap CI over items]",
        soft_wrap=True,
    )
    for table in eval_rich_tables(doc):
        print_table(console, table)
    if doc.get("error"):
        console.print(f"[red]error:[/red] {doc['error']}")


def demo_rich_table(doc: Mapping[str, Any]) -> Table:
    """The demo's cross-seed summary (%, mean ± std over seeds)."""
    summary = doc.get("summary") or {}
    models, cols = M.demo_summary_order(summary, doc.get("summary_order"))
    table = Table(
        title=f"Summary over world seeds (%, mean ± std over seeds): {doc.get('run_id')}",
        title_justify="left",
    )
    table.add_column("model", no_wrap=True)
    for c in cols:
        table.add_column(c, justify="right")
    for model in models:
        by_col = summary[model]
        cells = []
        for c in cols:
            v = by_col.get(c) or {}
            cells.append(
                "n/a" if v.get("mean") is None else f"{100 * v['mean']:.1f} ± {100 * (v.get('std') or 0):.1f}"
            )
        table.add_row(model, *cells)
    return table


def print_demo(console: Console, doc: Mapping[str, Any]) -> None:
    print_table(console, demo_rich_table(doc))
    for name, ok in (doc.get("checks") or {}).items():
        console.print(f"  {name}: [bold]{'yes' if ok else 'no' if ok is not None else 'not measured'}[/bold]")
    for rec in doc.get("seeds", []):
        summary = rec.get("summary")
        if summary:
            console.print(f"\n[bold]Seed {rec.get('seed')}[/bold]")
            for table in eval_rich_tables(summary):
                print_table(console, table)


def write_site_to_store(store: ObjectStore, kind: str, item_id: str) -> str | None:
    """Write the site of an evaluation (``eval``) or demo run (``demo``) beside its report.md in the
    store (``results/<id>/site/``, ``demo/<id>/site/``); returns the entry page's URI, or None (logged)
    when it could not be written (the run's results stay as they are). An evaluation's lineage links
    to the pairs and trees sites in the store (`pbt.view.site.publish_eval_site`)."""
    from pbt.view.site import build_site, default_prefix, publish, publish_eval_site

    try:
        if kind == "eval":  # with links to the pairs and trees sites of its lineage in the store
            return publish_eval_site(store, item_id, prefix=default_prefix(kind, item_id))
        with tempfile.TemporaryDirectory(prefix="pbt-view-") as tmp:
            site = build_site(store, kind, item_id, Path(tmp))
            return publish(store, site, default_prefix(kind, item_id))
    except Exception as exc:  # the site is a view of results already written: never fail the run
        log.warning("could not write the %s site of %s: %s", kind, item_id, exc)
        return None


def demo_site(store_url: str | None, run_id: str) -> str:
    """The `pbt demo` hook: write the run's site beside its report.md; the line to print."""
    from pbt.store import open_store

    uri = write_site_to_store(open_store(store_url), "demo", run_id)
    return f"site: {uri}" if uri else "site: not written (see the warning above)"
