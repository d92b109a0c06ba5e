"""The page model: tree, pair and evaluation records -> plain dicts that say what each page shows.

Pure Python (no store, no HTML), so it is tested on hand-built trees. The tree views use the
preference engine itself (`pbt.prefs.analyze_tree`, whose `compare_siblings` names the rule that
skipped each sibling comparison), so what the viewer says about a pair is what the engine did.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pbt.answers import prepare_aliases
from pbt.evaluate.report import PAPER_SUBSETS, report_tables
from pbt.prefs.engine import (
    SKIP_REASONS,
    Pair,
    PairFilterLike,
    SiblingComparison,
    TreeAnalysis,
    analyze_tree,
    node_correctness,
    subtree_scores,
)
from pbt.tree.model import AGENT_NAMES, Tree

#: why a kept pair got its label (PBT-METHOD.md §4.4); k is the agent of the chosen/rejected turns
LABEL_RULES: dict[str | None, str] = {
    "resist": "resist: k kept a correct answer under pressure (Q and P have the same number of correct "
    "answers; k was correct at G, is correct at P and wrong at D)",
    "accept": "accept: k took up a correct answer (P has more correct answers than Q; k was wrong at G, "
    "is correct at P and wrong at D)",
    None: "no label: kept by the score rule, but neither the resist nor the accept condition of §4.4 "
    "holds (or Q or G cannot be scored)",
}
DROPPED_ALL_AGREE = "dropped: every turn below level 0 agrees (§4.1), so the tree yields no pairs"
FILTERED = "dropped by the §4.5 pair filter (the chosen / rejected responses do not agree / disagree as the label needs)"

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def page_name(item_id: str) -> str:
    """A file-name-safe stem for a page of `item_id` (the id itself when it is safe, else a hash)."""
    if _SAFE.match(item_id) and not item_id.endswith("."):
        return item_id
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id)[:40].strip("._") or "x"
    return f"{slug}-{hashlib.sha1(item_id.encode('utf-8')).hexdigest()[:10]}"


def answer_ok(answer: str | None, aliases: frozenset[str]) -> bool | None:
    """Whether one answer alone is a gold alias (lowercased, stripped); None when there is none."""
    return None if answer is None else answer.lower().strip() in aliases


# ------------------------------------------------------------------------------------- trees
def analyse(tree: Tree, pair_filter: PairFilterLike | None = None) -> TreeAnalysis:
    """The engine's analysis, with correctness and scores filled in for dropped trees too (shown, not used)."""
    analysis = analyze_tree(tree, pair_filter)
    if analysis.dropped_all_agree:
        analysis.correctness = node_correctness(tree, analysis.resolved)
        analysis.scores = subtree_scores(tree, analysis.correctness)
    return analysis


def margin_text(bigger: int, smaller: int) -> str:
    ratio = (bigger - smaller) / bigger if bigger else 0.0
    return f"score {bigger} vs {smaller}: (larger - smaller) / larger = {ratio:.2f}"


def comparison_view(
    tree: Tree, c: SiblingComparison, pairs: Mapping[tuple[str, str], Pair], filtered: set
) -> dict:
    """One sibling comparison: kept (with label and rule), dropped by the filter, or skipped (with the rule)."""
    out: dict[str, Any] = {
        "parent": c.parent,
        "left": c.left,
        "right": c.right,
        "left_score": c.left_score,
        "right_score": c.right_score,
        "speaker": AGENT_NAMES[tree.nodes[c.left].agent],
        "depth": tree.nodes[c.left].depth,
    }
    if c.pair is None:
        assert c.reason is not None
        why = SKIP_REASONS[c.reason]
        if c.reason == "below_margin":
            bigger, smaller = max(c.left_score, c.right_score), min(c.left_score, c.right_score)
            why = f"{margin_text(bigger, smaller)}, not above the 0.5 margin"
        elif c.reason == "unequal_children":
            why = (
                f"unequal children: {len(tree.nodes[c.left].children)} vs "
                f"{len(tree.nodes[c.right].children)} (the rule compares only siblings with as many children)"
            )
        return out | {"outcome": "skipped", "reason": c.reason, "why": why}
    key = (c.pair.chosen, c.pair.rejected)
    pair = pairs.get(key)
    outcome = "pair" if pair is not None else "filtered"
    code = (
        pair.code
        if pair is not None
        else next((p.code for p in filtered if (p.chosen, p.rejected) == key), None)
    )
    rule = f"{margin_text(c.pair.chosen_score, c.pair.rejected_score)} > 0.5; {LABEL_RULES[code]}"
    return out | {
        "outcome": outcome,
        "reason": None if outcome == "pair" else "filtered",
        "why": rule if outcome == "pair" else f"{FILTERED}; {rule}",
        "chosen": c.pair.chosen,
        "rejected": c.pair.rejected,
        "code": code,
        "rule": rule,
    }


def tree_view(
    tree: Tree,
    *,
    analysis: TreeAnalysis | None = None,
    pair_filter: PairFilterLike | None = None,
    split: str | None = None,
    pair_files: Mapping[tuple[str, str, str], Sequence[str]] | None = None,
) -> dict[str, Any]:
    """What the page of one tree shows.

    Nodes (pre-order) carry speaker, persona, text, both raw and resolved answers, correctness
    under the §3 rule (``correct``: None when the node cannot be scored; ``answer_ok``: each answer
    alone against the gold aliases), the subtree score and their pair marks. ``comparisons`` holds
    every sibling comparison: kept pairs (chosen / rejected, label, the rule), pairs the §4.5
    filter dropped, and skipped ones with the rule that skipped them. `pair_files` maps
    (tree id, chosen, rejected) to the preference files holding that pair (accept / resist / pbt).
    """
    analysis = analysis or analyse(tree, pair_filter)
    aliases = prepare_aliases(tree.question.gold)
    kept = {(p.chosen, p.rejected): p for p in analysis.pairs}
    filtered = {p for p in analysis.filtered}
    comparisons = [comparison_view(tree, c, kept, filtered) for c in analysis.comparisons]
    for c in comparisons:
        if c["outcome"] != "skipped":
            c["files"] = list((pair_files or {}).get((tree.id, c["chosen"], c["rejected"]), ()))
    marks: dict[str, list[dict[str, Any]]] = {}
    for c in comparisons:
        if c["outcome"] == "skipped":
            continue
        base = {"code": c["code"], "outcome": c["outcome"], "files": c["files"]}
        marks.setdefault(c["chosen"], []).append({"role": "chosen", "other": c["rejected"], **base})
        marks.setdefault(c["rejected"], []).append({"role": "rejected", "other": c["chosen"], **base})
    nodes = []
    for n in tree.walk():
        resolved = analysis.resolved[n.id]
        correct = analysis.correctness.get(n.id)
        nodes.append(
            {
                "id": n.id,
                "parent": n.parent,
                "children": list(n.children),
                "depth": n.depth,
                "agent": n.agent,
                "speaker": n.agent_name,
                "persona": n.persona,
                "text": n.text,
                "answers": list(n.answers),
                "resolved": list(resolved),
                "correct": None if correct is None else list(correct),
                "answer_ok": [answer_ok(a, aliases) for a in resolved],
                "score": analysis.scores.get(n.id, 0),
                "marks": marks.get(n.id, []),
            }
        )
    pairs = [c for c in comparisons if c["outcome"] == "pair"]
    return {
        "id": tree.id,
        "question": tree.question.text,
        "question_id": tree.question.id,
        "gold": list(tree.question.gold),
        "split": split,
        "agents": [a.model_dump(mode="json") for a in tree.agents],
        "dropped_all_agree": analysis.dropped_all_agree,
        "status": DROPPED_ALL_AGREE if analysis.dropped_all_agree else None,
        "nodes": nodes,
        "comparisons": comparisons,
        "counts": {
            "nodes": len(nodes),
            "pairs": len(pairs),
            "accept": sum(1 for c in pairs if c["code"] == "accept"),
            "resist": sum(1 for c in pairs if c["code"] == "resist"),
            "unlabelled": sum(1 for c in pairs if c["code"] is None),
            "filtered": sum(1 for c in comparisons if c["outcome"] == "filtered"),
            "skipped": sum(1 for c in comparisons if c["outcome"] == "skipped"),
        },
    }


#: the columns of an index row (`index_row`), in order; the index data file stores rows as lists
INDEX_COLUMNS = (
    "id", "question", "nodes", "pairs", "accept", "resist", "agree", "root_ok", "personas", "split", "page",
)  # fmt: skip


def index_row(view: Mapping[str, Any], *, max_question: int = 90) -> list[Any]:
    """One compact row of the tree index (columns `INDEX_COLUMNS`).

    ``agree``: 1 when the tree was dropped because all agree; ``root_ok``: 1 / 0 whether agent A's
    level-0 answer is a gold alias (null without one); ``personas``: the personas of the turns that
    are chosen or rejected in a pair; ``page``: the page stem when it is not the id itself, else 0.
    """
    q = " ".join(view["question"].split())
    if len(q) > max_question:
        q = q[: max_question - 1] + "…"
    root = view["nodes"][0] if view["nodes"] else None
    ok = None if root is None else root["answer_ok"][root["agent"]]
    by_id = {n["id"]: n for n in view["nodes"]}
    personas = sorted(
        {
            p
            for c in view["comparisons"]
            if c["outcome"] == "pair"
            for p in (by_id[c["chosen"]]["persona"], by_id[c["rejected"]]["persona"])
            if p
        }
    )
    stem = page_name(view["id"])
    counts = view["counts"]
    return [
        view["id"],
        q,
        counts["nodes"],
        counts["pairs"],
        counts["accept"],
        counts["resist"],
        int(view["dropped_all_agree"]),
        None if ok is None else int(ok),
        personas,
        view["split"],
        0 if stem == view["id"] else stem,
    ]


def pair_files_index(
    records_by_file: Mapping[str, Iterable[Mapping[str, Any]]],
) -> dict[tuple[str, str, str], list[str]]:
    """(tree id, chosen node, rejected node) -> the names of the preference files holding that pair."""
    out: dict[tuple[str, str, str], list[str]] = {}
    for name, records in records_by_file.items():
        for r in records:
            out.setdefault((str(r["tree_id"]), str(r["chosen_node"]), str(r["rejected_node"])), []).append(
                name
            )
    return out


def splits_of(records_by_file: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, str]:
    """tree id -> split, from pair records."""
    return {str(r["tree_id"]): r["split"] for records in records_by_file.values() for r in records}


# ------------------------------------------------------------------------------------- pairs
def pair_view(record: Mapping[str, Any], *, tree_href: str | None = None) -> dict[str, Any]:
    """One preference record: the prompt (dialogue up to Q), chosen vs rejected, label, split, scores."""
    return {
        "tree_id": record.get("tree_id"),
        "chosen_node": record.get("chosen_node"),
        "rejected_node": record.get("rejected_node"),
        "code": record.get("code"),
        "split": record.get("split"),
        "agent": record.get("agent"),
        "chosen_score": record.get("chosen_score"),
        "rejected_score": record.get("rejected_score"),
        "question": record.get("question"),
        "gold": list(record.get("gold") or []),
        "prompt": list(record.get("prompt") or []),
        "chosen": " ".join(m.get("content", "") for m in record.get("chosen") or []),
        "rejected": " ".join(m.get("content", "") for m in record.get("rejected") or []),
        "rule": LABEL_RULES.get(record.get("code")),
        "tree_href": tree_href,
    }


def demo_summary_order(
    summary: Mapping[str, Mapping[str, Any]], order: Mapping[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """Models and columns of a demo summary in the order the report records (``summary_order:
    {models, columns}`` of report.json, whose objects are stored with sorted keys); names it does
    not list follow, sorted."""
    order = order or {}
    found = {c for by_col in summary.values() for c in by_col}
    known_models = [m for m in order.get("models") or [] if m in summary]
    known_cols = [c for c in order.get("columns") or [] if c in found]
    models = known_models + sorted(set(summary) - set(known_models))
    cols = known_cols + sorted(found - set(known_cols))
    return models, cols


# -------------------------------------------------------------------------------- evaluation
def slug(text: str) -> str:
    return page_name(str(text).replace("+", "_").replace("/", "_"))


def items_href(suite: str, page: str, anchor: str | None = None) -> str:
    """The items page of one suite group, relative to the evaluation's index page."""
    return f"items/{suite}/{slug(page)}.html" + (f"#{slug(anchor)}" if anchor else "")


def lineage_href(model: str) -> str:
    """The anchor of a model's lineage on the evaluation page (the first cell of its rows links there)."""
    return f"#lineage-{slug(model)}"


def eval_tables(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`pbt.evaluate.report.report_tables` (the tables report.md has) with links: a row's first
    cell to the lineage of its model (a team's: its first model), every value and chart bar to
    the items it was computed from. Cells are ``{"text", "href", "metric"}``; bars ``{"label",
    "series", "mean", "ci_low", "ci_high", "href"}`` (fractions)."""
    tables = report_tables(dict(doc))
    for table in tables:
        suite = table.get("suite", table["id"])
        for row in table["rows"]:
            for i, cell in enumerate(row):
                if "lineage" in cell:
                    row[i] = {"text": cell["text"], "href": lineage_href(cell["lineage"])}
                elif "page" in cell:
                    row[i] = {
                        "text": cell["text"],
                        "href": items_href(suite, cell["page"], cell["anchor"]),
                        "metric": cell["metric"],
                    }
                else:
                    row[i] = {"text": cell["text"], "href": None}
        for bar in table["chart"]:
            bar["href"] = items_href(suite, bar.pop("page"), bar.pop("anchor"))
    return tables


def item_pages(suite: str, records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The drill-down pages of one suite: page key (model, or team) -> {title, sections}.

    A section is ``{"anchor", "title", "items"}`` and an item the record itself plus its ``anchor``
    (``i-<item>-s<seed>``). Team debate puts both speaking orders of an item together
    (``item["orders"]``: a_first / b_first records).
    """
    pages: dict[str, dict[str, Any]] = {}
    if suite == "team_debate":
        grouped: dict[str, dict[tuple[str, Any], dict[str, Any]]] = {}
        for r in records:
            by_item = grouped.setdefault(r["team"], {})
            entry = by_item.setdefault(
                (str(r["item_id"]), r.get("seed")),
                {
                    "item_id": r["item_id"],
                    "seed": r.get("seed"),
                    "question": r.get("question"),
                    "gold": r.get("gold"),
                    "orders": {},
                    "anchor": item_anchor(r),
                },
            )
            entry["orders"][r["order"]] = r
        for team, items in grouped.items():
            pages[team] = {
                "title": f"team debate: {team}",
                "sections": [{"anchor": None, "title": None, "items": _sorted(items.values())}],
            }
        return pages
    for r in records:
        model = r["model"]
        if suite == "misinformation":
            section = str(r.get("subset"))
        elif suite == "balanced":
            section = str(r.get("code"))
        else:
            section = ""
        page = pages.setdefault(model, {"title": f"{suite}: {model}", "sections": {}})
        page["sections"].setdefault(section, []).append({**r, "anchor": item_anchor(r)})
    for page in pages.values():
        page["sections"] = [
            {
                "anchor": slug(name) if name else None,
                "title": _section_title(suite, name),
                "items": _sorted(items),
            }
            for name, items in sorted(page["sections"].items(), key=lambda kv: _section_order(suite, kv[0]))
        ]
    return pages


def _section_order(suite: str, name: str) -> tuple[int, str]:
    """Sections in the order of the table's columns (balanced: +→- then -→+), else by name."""
    order = {"balanced": ("resist", "accept"), "misinformation": PAPER_SUBSETS}.get(suite, ())
    return (order.index(name) if name in order else len(order), name)


def _section_title(suite: str, name: str) -> str | None:
    if suite == "balanced":
        return {"resist": "+→- (resist items)", "accept": "-→+ (accept items)"}.get(name, name)
    return name or None


def _sorted(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return sorted((dict(i) for i in items), key=lambda i: (str(i.get("item_id")), str(i.get("seed"))))


def item_anchor(record: Mapping[str, Any]) -> str:
    return slug(f"i-{record.get('item_id')}-s{record.get('seed')}")
