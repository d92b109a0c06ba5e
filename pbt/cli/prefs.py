"""`pbt prefs`: turn dialogue trees into preference pairs (PBT-METHOD.md §4)."""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from pbt.errors import PbtError, ValidationError
from pbt.personas import load_personas
from pbt.prefs.dataset import (
    DEFAULT_FRACTIONS,
    PAIR_AGENTS,
    PBT_BALANCES,
    PrefsResult,
    build_manifest,
    build_preferences,
    file_sha256,
    manifest_path,
    records_to_bytes,
    write_preferences,
)
from pbt.prefs.filters import EVAL_PAIR_FILTERS, PAIR_FILTERS, make_pair_filter, resolve_eval_filter
from pbt.prefs.record import MODES, SPLITS
from pbt.store import ObjectStore
from pbt.tree.io import FORMATS, load_trees


def _check_out(out: str) -> ObjectStore | None:
    """Fail before any work when --out cannot be written (a folder, an uncreatable path, S3 without
    an endpoint); returns the opened store for an ``s3://`` --out (None for a local file)."""
    if out.startswith("s3://"):
        from pbt.store import open_store

        store_url, _key = _split_s3(out)
        try:
            return open_store(store_url)
        except PbtError as exc:
            raise click.BadParameter(str(exc), param_hint="--out") from None
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        raise click.BadParameter(f"{out} is a folder; give a file name (pairs.jsonl)", param_hint="--out")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot create {path.parent}: {exc.strerror or exc}", param_hint="--out"
        ) from None
    if path.exists() and not path.is_file():
        raise click.BadParameter(f"{out} is not a regular file", param_hint="--out")
    return None


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValidationError(f"expected s3://bucket/key, got {url!r}", field="path")
    return f"s3://{bucket}", key


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three comma-separated numbers, got {text!r}") from None
    if len(parts) != 3:
        raise click.BadParameter(f"expected three comma-separated numbers, got {text!r}")
    from pbt.prefs.dataset import check_fractions

    try:
        return tuple(check_fractions(parts, field="split"))  # type: ignore[return-value]
    except PbtError as exc:
        raise click.BadParameter(str(exc), param_hint="--split") from None


def summary_table(result: PrefsResult, skipped: int) -> Table:
    counts = result.counts()
    table = Table(title=f"preference pairs (mode {result.mode}, seed {result.seed})")
    table.add_column("")
    for column in ("resist", "accept", "unlabelled", "total"):
        table.add_column(column, justify="right")
    table.add_row("trees read", "", "", "", str(result.trees_read))
    table.add_row("lines skipped (invalid)", "", "", "", str(skipped))
    table.add_row("trees dropped (all agree)", "", "", "", str(result.trees_dropped_all_agree))
    table.add_row("trees with pairs", "", "", "", str(result.trees_with_pairs))
    found = counts["pairs_found"]
    table.add_row(
        "pairs found",
        str(found["resist"]),
        str(found["accept"]),
        str(found["none"]),
        str(sum(found.values())),
    )
    for split in SPLITS:
        row = counts["pairs_written"][split]
        table.add_row(
            f"written: {split} ({counts['trees_per_split'][split]} trees)",
            str(row["resist"]),
            str(row["accept"]),
            str(row["none"]),
            str(sum(row.values())),
        )
    table.add_row("written: total", "", "", "", str(counts["pairs_written_total"]), style="bold")
    return table


@click.command("prefs")
@click.option(
    "--trees", "tree_paths", multiple=True, required=True, help="Tree file(s) (JSON Lines); repeatable."
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="native", show_default=True, help="Tree format."
)
@click.option(
    "--mode", type=click.Choice(MODES), required=True, help="labelled | accept | resist | pbt | all."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the split and of the pbt trimming."
)
@click.option(
    "--split",
    "split_text",
    default=",".join(map(str, DEFAULT_FRACTIONS)),
    show_default=True,
    help="train,dev,test fractions (by tree).",
)
@click.option("--out", required=True, help="Output pairs file (JSON Lines); the manifest goes beside it.")
@click.option("--skip-invalid", is_flag=True, help="Skip bad tree lines (reported) instead of failing.")
@click.option(
    "--personas",
    "personas_path",
    type=click.Path(dir_okay=False, exists=True),
    help="Persona set YAML whose standard instruction starts every prompt (default: the bundled set).",
)
@click.option(
    "--merge-consecutive/--no-merge-consecutive",
    default=True,
    show_default=True,
    help="Join consecutive same-role prompt messages (for chat templates that need alternating roles).",
)
@click.option(
    "--filter",
    "filter_name",
    type=click.Choice(PAIR_FILTERS),
    default="none",
    show_default=True,
    help="PBT-METHOD §4.5 pair filter of the train split: 'rules' keeps an accept pair only when its chosen "
    "response agrees with the persuader and its rejected one does not (a resist pair: the other way round), "
    "decided offline; 'judge' decides the same with a judge model (--judge-endpoint), as the paper.",
)
@click.option(
    "--eval-filter",
    "eval_filter_name",
    type=click.Choice(EVAL_PAIR_FILTERS),
    default="auto",
    show_default=True,
    help="Filter of the dev and test splits. 'auto': the --filter when it filters, else 'judge' when a "
    "judge is given, else 'rules' (the reference always filters its dev and test sets).",
)
@click.option(
    "--judge-endpoint",
    default=None,
    help="The judge agent of the 'judge' filter: an OpenAI-compatible endpoint (http://host:port/v1) "
    "or any backend spec of pbt.backends.make_backend.",
)
@click.option("--judge-model", default=None, help="The judge's model name at that endpoint.")
@click.option(
    "--pbt-balance",
    type=click.Choice(PBT_BALANCES),
    default="overall",
    show_default=True,
    help="How --mode pbt trims the larger code to the smaller's count: 'overall' samples it at random "
    "(PBT-METHOD §4.6); 'position' first matches the smaller code's count at each dialogue position "
    "(speaker and tree level), then samples the rest.",
)
@click.option(
    "--pair-agents",
    type=click.Choice(PAIR_AGENTS),
    default="both",
    show_default=True,
    help="Whose replies become pairs: both agents' (the paper), only agent A's (the level-0 speaker) or B's.",
)
@click.argument("extra_trees", nargs=-1)
def prefs(
    tree_paths: tuple[str, ...],
    fmt: str,
    mode: str,
    seed: int,
    split_text: str,
    out: str,
    skip_invalid: bool,
    personas_path: str | None,
    merge_consecutive: bool,
    filter_name: str,
    eval_filter_name: str,
    judge_endpoint: str | None,
    judge_model: str | None,
    pbt_balance: str,
    pair_agents: str,
    extra_trees: tuple[str, ...],
) -> None:
    """Build preference pairs from dialogue trees and write them atomically with a manifest.

    Paths may be local files or s3://bucket/key (read and written through the object store).
    Nothing is written when any input line is invalid (unless --skip-invalid).
    """
    console = Console()
    fractions = _fractions(split_text)
    paths = list(tree_paths) + list(extra_trees)
    out_store = _check_out(out)
    eval_filter_name = resolve_eval_filter(filter_name, eval_filter_name, has_judge=bool(judge_endpoint))
    judge = None
    if "judge" in (filter_name, eval_filter_name):
        if not judge_endpoint:
            raise click.BadParameter("the judge filter needs --judge-endpoint", param_hint="--judge-endpoint")
        from pbt.backends import make_backend
        from pbt.config import AgentConfig

        try:
            judge = make_backend(AgentConfig(endpoint=judge_endpoint, model=judge_model or ""))
        except (PbtError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="--judge-endpoint") from None
    with ExitStack() as stack:
        if judge is not None:
            from pbt.extract.judge import run_sync

            stack.callback(lambda: run_sync(judge.aclose()))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pbt-prefs-")))
        try:
            local_paths = []
            for i, p in enumerate(paths):
                if p.startswith("s3://"):
                    from pbt.store import open_store

                    store_url, key = _split_s3(p)
                    local_paths.append(open_store(store_url).get_file(key, tmp / f"in-{i}.jsonl"))
                else:
                    local_paths.append(Path(p))
            loaded = load_trees(local_paths, fmt, skip_invalid)  # type: ignore[arg-type]
            if not loaded.trees:
                raise click.ClickException(
                    f"no trees in {', '.join(paths)} (empty or blank files"
                    + (", or every line skipped" if loaded.skipped else "")
                    + "): nothing to build pairs from"
                )
            if not any(tree.nodes for tree in loaded.trees):
                raise click.ClickException(
                    f"the {len(loaded.trees)} tree(s) in {', '.join(paths)} have no nodes"
                )
            personas = load_personas(personas_path)
            result = build_preferences(
                loaded.trees,
                mode,  # type: ignore[arg-type]
                seed=seed,
                fractions=fractions,
                personas=personas,
                merge_consecutive=merge_consecutive,
                pair_filter=make_pair_filter(filter_name, judge=judge, judge_field="--judge-endpoint"),
                eval_filter=make_pair_filter(
                    eval_filter_name, field="--eval-filter", judge=judge, judge_field="--judge-endpoint"
                ),
                pbt_balance=pbt_balance,  # type: ignore[arg-type]
                pair_agents=pair_agents,  # type: ignore[arg-type]
            )
        except PbtError as exc:
            raise click.ClickException(str(exc)) from None
        data = records_to_bytes(result.records)
        inputs = [
            {"path": src, "sha256": file_sha256(local), "lines": loaded.lines.get(str(local), 0)}
            for src, local in zip(paths, local_paths, strict=True)
        ]
        manifest = build_manifest(
            result,
            inputs=inputs,
            output=out,
            output_sha256=hashlib.sha256(data).hexdigest(),
            fmt=fmt,
            fractions=fractions,
            pair_filter=filter_name,
            skipped=[{"location": s.location, "reason": s.reason} for s in loaded.skipped],
            settings={
                "personas": {"path": personas_path, "name": personas.name},
                "merge_consecutive": merge_consecutive,
                "pbt_balance": pbt_balance,
                "pair_agents": pair_agents,
                "eval_filter": eval_filter_name,
                "judge": {"endpoint": judge_endpoint, "model": judge_model} if judge is not None else None,
            },
        )
        try:
            if out_store is not None:
                _, key = _split_s3(out)
                local_out = write_preferences(tmp / "out.jsonl", data, manifest)
                out_store.put_bytes(key, data)
                out_store.put_bytes(manifest_path(key).as_posix(), local_out.read_bytes())
                written = f"{out} (+ {manifest_path(key).name})"
            else:
                mpath = write_preferences(out, data, manifest)
                written = f"{out} (+ {mpath.name})"
        except (PbtError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise click.BadParameter(f"cannot write {out}: {reason}", param_hint="--out") from None
    for s in loaded.skipped:
        console.print(f"[yellow]skipped[/] {s.location}: {s.reason}")
    console.print(summary_table(result, len(loaded.skipped)))
    console.print(f"wrote {len(result.records)} pairs to {written}")
