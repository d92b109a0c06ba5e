"""`pbt trees`: convert tree files between formats and render a tree in the terminal."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree as RichTree

from pbt.errors import PbtError
from pbt.tree.io import FORMATS, load_trees, trees_to_bytes
from pbt.tree.model import Tree


def _fail(exc: PbtError) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group("trees")
def trees() -> None:
    """Build, convert and inspect dialogue trees."""


@trees.command("convert")
@click.option(
    "--from", "src_fmt", type=click.Choice(FORMATS), default="auto", show_default=True, help="Input format."
)
@click.option(
    "--to",
    "dst_fmt",
    type=click.Choice(["native", "reference"]),
    default="native",
    show_default=True,
    help="Output format.",
)
@click.option("--skip-invalid", is_flag=True, help="Skip bad lines (each is reported) instead of failing.")
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
def convert(src_fmt: str, dst_fmt: str, skip_invalid: bool, src: Path, dst: Path) -> None:
    """Convert tree file SRC to DST (written atomically; nothing is written on error)."""
    from pbt.store import atomic_write_bytes

    err = Console(stderr=True)
    try:
        loaded = load_trees([src], src_fmt, skip_invalid)  # type: ignore[arg-type]
        data = trees_to_bytes(loaded.trees, dst_fmt)  # type: ignore[arg-type]
    except PbtError as exc:
        raise _fail(exc) from None
    atomic_write_bytes(dst, data)
    for skipped in loaded.skipped:
        err.print(f"[yellow]skipped[/] {escape(skipped.location)}: {escape(skipped.reason)}")
    err.print(
        f"wrote {len(loaded.trees)} trees ({dst_fmt}) to {escape(str(dst))}; skipped {len(loaded.skipped)} lines"
    )


def _fmt_answer(answer: str | None) -> str:
    return "[dim]—[/]" if answer is None else escape(repr(answer) if not answer.strip() else answer)


def render_tree(tree: Tree, max_text: int = 160) -> RichTree:
    """A rich renderable of a tree: speaker, persona, text, both answers, correctness, score."""
    from pbt.prefs.engine import analyze_tree, node_correctness, subtree_scores

    analysis = analyze_tree(tree)
    correctness = analysis.correctness or node_correctness(tree, analysis.resolved)
    scores = analysis.scores or subtree_scores(tree, correctness)
    marks: dict[str, list[str]] = {}
    for p in analysis.pairs:
        code = p.code or "unlabelled"
        marks.setdefault(p.chosen, []).append(f"[green]chosen[/] over {escape(p.rejected)} ({code})")
        marks.setdefault(p.rejected, []).append(f"[magenta]rejected[/] for {escape(p.chosen)} ({code})")
    gold = ", ".join(tree.question.gold) or "—"
    title = f"[bold]{escape(tree.id)}[/]: {escape(tree.question.text)}  [green]gold: {escape(gold)}[/]"
    if analysis.dropped_all_agree:
        title += "  [yellow](all agree: no pairs)[/]"
    root = RichTree(title)

    def label(node_id: str) -> str:
        n = tree.nodes[node_id]
        text = " ".join(n.text.split())
        if len(text) > max_text:
            text = text[: max_text - 1] + "…"
        persona = f"/{escape(n.persona)}" if n.persona else ""
        resolved = analysis.resolved[node_id]
        correct = correctness.get(node_id)
        parts = []
        for agent in (0, 1):
            ok = "" if correct is None else ("[green]✓[/]" if correct[agent] else "[red]✗[/]")
            shown = _fmt_answer(n.answers[agent])
            if resolved[agent] != n.answers[agent]:
                shown += f"→{_fmt_answer(resolved[agent])}"
            parts.append(f"{'AB'[agent]}={shown}{ok}")
        line = f"[cyan]{escape(node_id)}[/] [bold]{n.agent_name}{persona}[/] {escape(text)}\n    {'  '.join(parts)}"
        line += f"  [dim]score {scores.get(node_id, 0)}[/]"
        if node_id in marks:
            line += "  " + "; ".join(marks[node_id])
        return line

    def add(parent: RichTree, node_id: str) -> None:
        branch = parent.add(label(node_id))
        for child in tree.nodes[node_id].children:
            add(branch, child)

    for r in tree.roots():
        add(root, r.id)
    return root


@trees.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tree", "tree_id", help="Id of the tree to show (default: the first).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option(
    "--max-text", type=int, default=160, show_default=True, help="Truncate turn texts to this length."
)
def show(file: Path, tree_id: str | None, fmt: str, max_text: int) -> None:
    """Render a tree: branches, speaker and persona, text, both answers (after Disagree resolution),
    correctness under the preference rule, subtree scores and the pairs it yields."""
    console = Console()
    try:
        loaded = load_trees([file], fmt)  # type: ignore[arg-type]
    except PbtError as exc:
        raise _fail(exc) from None
    if not loaded.trees:
        raise click.ClickException(f"{file}: no trees")
    if tree_id is None:
        tree = loaded.trees[0]
        if len(loaded.trees) > 1:
            console.print(
                f"[dim]{len(loaded.trees)} trees in {escape(str(file))}; showing the first (use --tree ID)[/]"
            )
    else:
        matches = [t for t in loaded.trees if t.id == tree_id]
        if not matches:
            ids = ", ".join(t.id for t in loaded.trees[:10])
            raise click.ClickException(
                f"{file}: no tree with id {tree_id!r} (ids: {ids}{', ...' if len(loaded.trees) > 10 else ''})"
            )
        tree = matches[0]
    console.print(render_tree(tree, max_text))


from pbt.cli.trees_build import build  # noqa: E402  (`pbt trees build`, owned by the orchestrator component)

trees.add_command(build)
