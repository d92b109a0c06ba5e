"""The viewer's page model (pbt.view.model) and the engine's sibling-comparison reasons, on the
hand-built trees of tests/unit/prefs_trees.py (the arithmetic is worked out there)."""

from __future__ import annotations

import copy
import re

import prefs_trees as T
import pytest

from pbt.prefs import SKIP_REASONS, ModelFilter, analyze_tree, compare_siblings
from pbt.prefs.engine import node_correctness, resolve_disagree, subtree_scores
from pbt.tree.reference import tree_from_reference
from pbt.view import model as M


def tree_of(ref: dict):
    return tree_from_reference(copy.deepcopy(ref))


def outcomes(ref: dict) -> dict[tuple[str, str], str | None]:
    tree = tree_of(ref)
    resolved = resolve_disagree(tree)
    correctness = node_correctness(tree, resolved)
    scores = subtree_scores(tree, correctness)
    return {(c.left, c.right): c.reason for c in compare_siblings(tree, correctness, scores)}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            T.RESIST,
            {
                ("2", "3"): "unequal_children",
                ("4", "5"): "unequal_children",
                ("4", "6"): "unequal_children",
                ("5", "6"): "equal_scores",
                ("7", "8"): None,
                ("9", "10"): None,
            },
        ),
        (
            T.NOTHING,
            {
                ("2", "3"): "below_margin",  # 10 vs 5: exactly 0.5
                ("4", "5"): "both_correct",
                ("6", "7"): "unscorable",
                ("8", "9"): "both_correct",
                ("10", "11"): "unscorable",
                ("12", "13"): "below_margin",  # 1 vs 2
                ("14", "15"): "unscorable",
            },
        ),
        (
            T.LEVELS,
            {
                ("2", "3"): "unequal_children",
                ("4", "5"): None,
                ("4", "6"): None,
                ("5", "6"): None,
                ("7", "8"): "below_margin",
                ("9", "10"): "zero_scores",
                ("11", "12"): None,
            },
        ),
    ],
    ids=["resist", "nothing", "levels"],
)
def test_every_sibling_comparison_and_the_rule_that_skipped_it(ref, expected):
    assert outcomes(ref) == expected
    assert {r for r in expected.values() if r} <= set(SKIP_REASONS)


def test_kept_comparisons_are_exactly_the_engine_pairs():
    for ref in (T.RESIST, T.ACCEPT, T.LEVELS, T.NOTHING, T.NONE_NONE):
        analysis = analyze_tree(tree_of(ref))
        kept = {(c.pair.chosen, c.pair.rejected) for c in analysis.comparisons if c.pair}
        assert kept == {(p.chosen, p.rejected) for p in analysis.pairs}


def test_tree_view_marks_chosen_and_rejected_with_the_label_rule():
    view = M.tree_view(
        tree_of(T.RESIST), split="train", pair_files={("t-resist", "7", "8"): ["resist", "pbt"]}
    )
    nodes = {n["id"]: n for n in view["nodes"]}
    assert [n["id"] for n in view["nodes"]] == [
        "1",
        "2",
        "4",
        "5",
        "7",
        "8",
        "6",
        "9",
        "10",
        "3",
    ]  # pre-order
    assert nodes["7"]["marks"] == [
        {"role": "chosen", "other": "8", "code": "resist", "outcome": "pair", "files": ["resist", "pbt"]}
    ]
    assert nodes["10"]["marks"][0] | {"files": None} == {
        "role": "rejected",
        "other": "9",
        "code": "resist",
        "outcome": "pair",
        "files": None,
    }
    # what each node shows: speaker, raw and resolved answers, correctness, subtree score
    assert nodes["5"]["speaker"] == "A" and nodes["5"]["answers"] == ["Disagree", "Paris"]
    assert nodes["5"]["resolved"] == ["London", "Paris"] and nodes["5"]["correct"] == [False, True]
    assert {i: n["score"] for i, n in nodes.items()} == T.RESIST_SCORES
    assert nodes["1"]["correct"] is None and nodes["1"]["answer_ok"] == [False, None]  # B has no answer yet
    assert view["counts"] | {} == {
        "nodes": 10,
        "pairs": 2,
        "accept": 0,
        "resist": 2,
        "unlabelled": 0,
        "filtered": 0,
        "skipped": 4,
    }
    pair = next(c for c in view["comparisons"] if c["outcome"] == "pair")
    assert pair["chosen"] == "7" and pair["rule"].startswith(
        "score 1 vs 0: (larger - smaller) / larger = 1.00 > 0.5"
    )
    assert "resist: k kept a correct answer" in pair["rule"] and pair["files"] == ["resist", "pbt"]
    why = {(c["left"], c["right"]): c["why"] for c in view["comparisons"] if c["outcome"] == "skipped"}
    assert why[("2", "3")].startswith("unequal children: 3 vs 0")
    assert why[("5", "6")] == SKIP_REASONS["equal_scores"]


def test_tree_view_margin_and_skip_texts():
    view = M.tree_view(tree_of(T.NOTHING))
    why = {(c["left"], c["right"]): c["why"] for c in view["comparisons"]}
    assert why[("2", "3")] == "score 10 vs 5: (larger - smaller) / larger = 0.50, not above the 0.5 margin"
    assert why[("4", "5")] == "both have both answers correct"
    assert why[("6", "7")].startswith("one of them cannot be scored")
    assert view["counts"]["pairs"] == 0 and not any(n["marks"] for n in view["nodes"])


def test_unlabelled_pairs_are_shown_without_a_code():
    view = M.tree_view(tree_of(T.LEVELS))
    codes = {(c["chosen"], c["rejected"]): c["code"] for c in view["comparisons"] if c["outcome"] == "pair"}
    assert codes == {("4", "5"): None, ("4", "6"): None, ("6", "5"): None, ("12", "11"): "accept"}
    unlabelled = next(c for c in view["comparisons"] if c.get("chosen") == "4" and c["rejected"] == "5")
    assert "no label" in unlabelled["rule"]


class _Judge:
    """Agrees with nothing: the §4.5 filter then drops every labelled pair."""

    def answers_agree(self, question, pairs):
        return [False] * len(pairs)

    def responses_agree(self, question, responses):
        return [False] * len(responses)


def test_pairs_dropped_by_the_filter_are_shown_as_filtered():
    view = M.tree_view(tree_of(T.ACCEPT), pair_filter=ModelFilter(_Judge()))
    filtered = [c for c in view["comparisons"] if c["outcome"] == "filtered"]
    assert {(c["chosen"], c["rejected"], c["code"]) for c in filtered} == {
        ("8", "9", "accept"),
        ("10", "11", "accept"),
        ("12", "13", "accept"),
    }
    assert all(c["why"].startswith("dropped by the §4.5 pair filter") for c in filtered)
    assert view["counts"]["filtered"] == 3 and view["counts"]["accept"] == 0
    node8 = next(n for n in view["nodes"] if n["id"] == "8")
    assert node8["marks"][0]["outcome"] == "filtered"


def test_dropped_tree_still_shows_scores_and_says_why():
    view = M.tree_view(tree_of(T.ALL_AGREE))
    assert view["dropped_all_agree"] and view["status"] == M.DROPPED_ALL_AGREE
    assert view["comparisons"] == [] and all("score" in n for n in view["nodes"])
    row = M.index_row(view)
    assert dict(zip(M.INDEX_COLUMNS, row, strict=True)) == {
        "id": "t-agree",
        "question": "Q?",
        "nodes": 3,
        "pairs": 0,
        "accept": 0,
        "resist": 0,
        "agree": 1,
        "root_ok": 0,
        "personas": [],
        "split": None,
        "page": 0,
    }


def test_index_row_personas_root_and_page_names():
    tree = tree_of(T.RESIST)
    for n in tree.nodes.values():
        n.persona = {0: "logical", 1: "resistant"}[n.agent] if n.depth else None
    tree.id = "odd id/with slash"
    row = dict(zip(M.INDEX_COLUMNS, M.index_row(M.tree_view(tree, split="dev")), strict=True))
    assert row["personas"] == ["resistant"] and row["split"] == "dev" and row["root_ok"] == 0
    assert row["page"] == M.page_name("odd id/with slash") and "/" not in row["page"]
    assert M.page_name("q-1.ok") == "q-1.ok"
    assert M.page_name("a/b") != M.page_name("a_b")


def test_pair_files_index_and_splits():
    recs = {"accept": [{"tree_id": "t", "chosen_node": "5", "rejected_node": "4", "split": "train"}]}
    recs["pbt"] = list(recs["accept"])
    assert M.pair_files_index(recs) == {("t", "5", "4"): ["accept", "pbt"]}
    assert M.splits_of(recs) == {"t": "train"}


# ---------------------------------------------------------------------------- evaluation
def _metric(mean: float) -> dict:
    return {"mean": mean, "std": 0.0, "ci_low": mean - 0.1, "ci_high": mean + 0.1, "n": 10}


DOC = {
    "eval_id": "e1",
    "models": [{"name": "base"}, {"name": "pbt"}],
    "seeds": [1],
    "suites": {
        "misinformation": {
            "metrics": {
                "base/NQ1": {"misinformation_rate": _metric(0.5)},
                "base/Avg": {"misinformation_rate_avg": _metric(0.5)},
                "pbt/NQ1": {"misinformation_rate": _metric(0.25)},
                "pbt/Avg": {"misinformation_rate_avg": _metric(0.25)},
            }
        },
        "balanced": {"metrics": {"base": {"accuracy_resist": _metric(0.4), "overall": _metric(0.5)}}},
        "team_debate": {
            "metrics": {
                "pbt+base/a_first": {"team_accuracy": _metric(0.75)},
                "pbt+base/b_first": {"team_accuracy": _metric(0.5)},
                "pbt+base": {"order_dependence": _metric(0.25)},
            }
        },
    },
}


def test_eval_tables_link_every_cell_to_its_items():
    tables = {t["id"]: t for t in M.eval_tables(DOC)}
    assert list(tables) == ["misinformation", "balanced", "team_debate"]
    mis = tables["misinformation"]
    assert mis["header"] == ["model", "NQ1", "Avg"]
    assert mis["rows"][1][1] == {
        "text": "25.00 ± 0.00 [15.00, 35.00]",
        "href": "items/misinformation/pbt.html#NQ1",
        "metric": _metric(0.25),
    }
    assert mis["rows"][0][2]["href"] == "items/misinformation/base.html"
    assert mis["rows"][0][0] == {"text": "base", "href": "#lineage-base"}  # model -> its lineage
    assert [b["mean"] for b in mis["chart"]] == [0.5, 0.25]
    bal = tables["balanced"]["rows"][0]
    assert bal[1]["href"] == "items/balanced/base.html#resist" and bal[2]["text"] == "n/a"
    team = tables["team_debate"]["rows"]
    assert [r[1]["text"] for r in team] == ["pbt first", "base first"]
    assert team[0][2]["href"] == "items/team_debate/pbt_base.html"
    assert team[0][5]["text"].startswith("25.00") and team[1][5]["text"] == ""


def test_item_pages_put_both_team_debate_orders_of_an_item_together():
    recs = [
        {
            "team": "pbt+base",
            "order": o,
            "item_id": "q1",
            "seed": 1,
            "question": "Q",
            "gold": ["x"],
            "a": "pbt",
            "b": "base",
        }
        for o in ("a_first", "b_first")
    ]
    pages = M.item_pages("team_debate", recs)
    (item,) = pages["pbt+base"]["sections"][0]["items"]
    assert set(item["orders"]) == {"a_first", "b_first"} and item["anchor"] == "i-q1-s1"
    mis = M.item_pages(
        "misinformation",
        [
            {"model": "base", "subset": s, "item_id": i, "seed": 1}
            for s, i in (("NQ1", "b"), ("NQ1", "a"), ("BoolQ", "c"))
        ],
    )
    sections = mis["base"]["sections"]
    assert [s["anchor"] for s in sections] == ["NQ1", "BoolQ"]  # the paper's column order
    assert [i["item_id"] for i in sections[0]["items"]] == ["a", "b"]
    bal = M.item_pages(
        "balanced", [{"model": "m", "code": c, "item_id": c, "seed": 1} for c in ("accept", "resist")]
    )
    assert [s["anchor"] for s in bal["m"]["sections"]] == ["resist", "accept"]


def test_terminal_tables_keep_one_row_a_line_outside_a_terminal():
    import io

    from rich.console import Console

    from pbt.view.terminal import print_demo, print_eval

    out = io.StringIO()
    console = Console(file=out, width=60, force_terminal=False)
    print_eval(console, DOC)
    print_demo(
        console, {"run_id": "r", "summary": {"pbt": {"bal. overall": {"mean": 0.5, "std": 0.1}}}, "seeds": []}
    )
    text = out.getvalue()
    assert "Table 1: misinformation rate (%, lower is better)" in text
    assert re.search(
        r"│ pbt\s+│\s+25\.00 ± 0\.00 \[15\.00, 35\.00\] │\s+25\.00 ± 0\.00 \[15\.00, 35\.00\] │", text
    )
    assert re.search(r"│ pbt\s+│\s+50\.0 ± 10\.0 │", text)
    assert console.width == 60  # restored after the wide tables


def test_demo_summary_in_the_report_order():
    summary = {
        m: {"order dependence": {}, "misinfo rate": {}, "zeta": {}}
        for m in ("resist", "accept", "pbt", "base")
    }
    order = {"models": ["base", "accept", "resist", "pbt"], "columns": ["misinfo rate", "order dependence"]}
    models, cols = M.demo_summary_order(summary, order)
    assert models == ["base", "accept", "resist", "pbt"]
    assert cols == ["misinfo rate", "order dependence", "zeta"]


def test_demo_summary_without_a_recorded_order_is_sorted():
    models, cols = M.demo_summary_order({"pbt": {"b": {}}, "base": {"a": {}, "c": {}}})
    assert models == ["base", "pbt"] and cols == ["a", "b", "c"]
