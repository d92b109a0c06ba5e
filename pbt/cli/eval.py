"""`pbt eval run --config FILE` (progress bars) and `pbt eval report EVAL_ID` (the tables)."""

from __future__ import annotations

import asyncio
import sys

import click

from pbt.errors import PbtError


@click.group("eval")
def eval_group() -> None:
    """Run the persuasion evaluations (misinformation, are-you-sure, balanced, team debate)."""


def _fail(exc: BaseException) -> click.ClickException:
    return click.ClickException(str(exc))


@eval_group.command("run")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Evaluation YAML."
)
@click.option("--eval-id", default=None, help="Override the config's eval_id.")
@click.option(
    "--store", "store_url", default=None, help="Override the results store URL (file path or s3://...)."
)
@click.option(
    "--server", default=None, help="Run on an evaluator gRPC server (host:port) instead of in-process."
)
@click.option("--token", envvar="PBT_GRPC_TOKEN", default=None, help="Bearer token for --server.")
@click.option("--quiet", is_flag=True, help="No progress bars and no tables; print the results URI only.")
@click.option(
    "--site/--no-site",
    default=True,
    show_default=True,
    help="Write the HTML viewer site beside report.md (results/<eval_id>/site/) and print its path.",
)
def run_cmd(
    config_path: str,
    eval_id: str | None,
    store_url: str | None,
    server: str | None,
    token: str | None,
    quiet: bool,
    site: bool,
) -> None:
    """Run (or resume) an evaluation and print its tables. Re-running an eval_id skips finished examples."""
    from rich.console import Console

    from pbt.evaluate import load_config
    from pbt.view.terminal import stage_progress

    overrides: dict = {"eval_id": eval_id}
    if store_url:
        overrides["store"] = {"url": store_url}
    try:
        config = load_config(config_path, overrides=overrides)
    except PbtError as exc:
        raise _fail(exc) from None
    with stage_progress(Console(stderr=True), enabled=not quiet) as on_progress:
        try:
            if server:
                doc = asyncio.run(_run_remote(server, token, config, on_progress))
            else:
                doc = _run_local(config, on_progress)
        except PbtError as exc:
            raise _fail(exc) from None
    site_uri = _write_site(config, doc, remote=bool(server)) if site else None
    if quiet:
        click.echo(doc["results_uri"])
        return
    from pbt.view.terminal import print_eval

    out = Console()
    print_eval(out, doc)
    click.echo(f"report: {doc.get('results_uri', '').rstrip('/')}/report.md")  # (paths unwrapped)
    if site_uri:
        click.echo(f"site: {site_uri}")
    elif site:
        click.echo("site: not written (see the warning above)")


def _write_site(config, doc: dict, remote: bool) -> str | None:
    """The viewer site of the evaluation, in its results store (None when it cannot be written).

    In-process the store is the config's; after a run on a server it is the one its results URI
    names, when this machine can reach it (a file:// store that is not here is left alone)."""
    from pathlib import Path

    from pbt.store import open_store
    from pbt.view.terminal import write_site_to_store

    try:
        if not remote:
            store = config.store.open()
        else:
            uri = (doc.get("results_uri") or "").rstrip("/")
            suffix = f"/results/{doc['eval_id']}"
            base = uri[: -len(suffix)] if uri.endswith(suffix) else ""
            if not base or (base.startswith("file://") and not Path(base[len("file://") :]).is_dir()):
                click.echo(f"site: the results store {base or uri!r} is not reachable from here", err=True)
                return None
            store = open_store(base)
    except PbtError as exc:
        click.echo(f"site: cannot open the results store: {exc}", err=True)
        return None
    return write_site_to_store(store, "eval", doc["eval_id"])


def _run_local(config, on_progress) -> dict:
    from pbt.evaluate import run_evaluation_sync

    return run_evaluation_sync(config, progress=lambda ev: on_progress(ev.suite, ev.done, ev.total))


async def _run_remote(server: str, token: str | None, config, on_progress) -> dict:
    from pbt.rpc import EvaluatorClient

    async with EvaluatorClient(server, token=token) as evaluator:
        return await evaluator.evaluate(config, on_progress=on_progress)


@eval_group.command("report")
@click.argument("eval_id")
@click.option("--store", "store_url", default=None, help="Results store URL (default: from the environment).")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of the tables.")
def report_cmd(eval_id: str, store_url: str | None, as_json: bool) -> None:
    """Print the tables of an evaluation (report.md), or its summary.json with --json."""
    import json

    from pbt.evaluate import load_summary
    from pbt.evaluate.report import render_report
    from pbt.evaluate.results import report_key
    from pbt.store import open_store

    try:
        store = open_store(store_url)
        doc = load_summary(store, eval_id)
        if as_json:
            click.echo(json.dumps(doc, indent=2, sort_keys=True))
            return
        key = report_key(eval_id)
        text = store.get_text(key) if store.exists(key) else render_report(doc)
    except PbtError as exc:
        raise _fail(exc) from None
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
