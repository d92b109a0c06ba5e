"""The preference engine on hand-built reference-format trees with hand-worked expectations
(see tests/unit/prefs_trees.py for the trees and the arithmetic)."""

from __future__ import annotations

import copy

import prefs_trees as T
import pytest

from pbt.prefs import analyze_tree, node_correctness, resolve_disagree, subtree_scores
from pbt.prefs.dataset import build_preferences
from pbt.tree.reference import tree_from_reference


def pairs_of(ref: dict, labelled_only: bool = True) -> set[tuple]:
    analysis = analyze_tree(tree_from_reference(copy.deepcopy(ref)))
    return {
        (p.tree_id, p.chosen, p.rejected, p.code)
        for p in analysis.pairs
        if p.code is not None or not labelled_only
    }


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (T.RESIST, T.RESIST_EXPECTED),
        (T.ACCEPT, T.ACCEPT_EXPECTED),
        (T.LEVELS, {("t-levels", "12", "11", "accept")}),
        (T.NOTHING, set()),
        (T.ALL_AGREE, set()),
        (T.NONE_NONE, set()),
    ],
    ids=["resist", "accept", "levels", "nothing", "all-agree", "none-none"],
)
def test_labelled_pairs_match_hand_worked_expectations(ref, expected):
    assert pairs_of(ref) == expected


def test_unlabelled_pairs_are_found_too():
    assert pairs_of(T.LEVELS, labelled_only=False) == T.LEVELS_EXPECTED_ALL
    assert pairs_of(T.RESIST, labelled_only=False) == T.RESIST_EXPECTED
    assert pairs_of(T.NOTHING, labelled_only=False) == set()


def test_subtree_scores_by_hand():
    for ref, expected in ((T.RESIST, T.RESIST_SCORES), (T.NOTHING, T.NOTHING_SCORES)):
        tree = tree_from_reference(copy.deepcopy(ref))
        resolved = resolve_disagree(tree)
        scores = subtree_scores(tree, node_correctness(tree, resolved))
        assert {k: scores[k] for k in expected} == expected


def test_pair_scores_are_subtree_scores():
    analysis = analyze_tree(tree_from_reference(copy.deepcopy(T.LEVELS)))
    by_nodes = {(p.chosen, p.rejected): (p.chosen_score, p.rejected_score) for p in analysis.pairs}
    assert by_nodes == {("4", "5"): (4, 0), ("4", "6"): (4, 1), ("6", "5"): (1, 0), ("12", "11"): (1, 0)}


def test_disagree_resolution():
    tree = tree_from_reference(
        T.ref_tree(
            "d",
            ["x"],
            [
                (1, -1, 0, "Disagree", None),  # depth 0: stays
                (2, 1, 1, "Disagree", "DISAGREE"),  # depth 1: grandparent is the prompt root -> both missing
                (3, 2, 0, "disagree", "y"),  # depth 2: A takes A's answer at node 1 = "Disagree"
                (4, 3, 1, "Disagree", "Disagree"),  # depth 3: both from node 2 (resolved)
            ],
        )
    )
    resolved = resolve_disagree(tree)
    assert resolved["1"] == ("Disagree", None)
    assert resolved["2"] == (None, None)  # grandparent is the prompt root: both become missing
    assert resolved["3"] == ("Disagree", "y")
    assert resolved["4"] == (None, None)
    # and the tree itself is not modified
    assert tree.nodes["2"].answers == ["Disagree", "DISAGREE"]


def test_disagree_takes_own_previous_answer_not_the_others():
    tree = tree_from_reference(
        T.ref_tree(
            "d2",
            ["x"],
            [
                (1, -1, 0, "a0", None),
                (2, 1, 1, "a0", "b1"),
                (3, 2, 0, "a2", "b1"),
                (4, 3, 1, "a2", "Disagree"),
            ],
        )
    )
    assert resolve_disagree(tree)["4"] == ("a2", "b1")


def test_all_agree_tree_is_dropped_and_counted():
    trees = [tree_from_reference(copy.deepcopy(r)) for r in (T.ALL_AGREE, T.NONE_NONE, T.RESIST)]
    result = build_preferences(trees, "all", seed=1)
    assert result.trees_read == 3
    assert result.trees_dropped_all_agree == 1
    assert {(r["tree_id"], r["chosen_node"], r["rejected_node"], r["code"]) for r in result.records} == (
        T.RESIST_EXPECTED | {("t-none", "3", "2", None)}
    )


def test_level0_only_tree_is_dropped():
    tree = tree_from_reference(T.ref_tree("solo", ["x"], [(1, -1, 0, "x", None)]))
    assert analyze_tree(tree).dropped_all_agree


def test_agreement_for_dropping_is_case_sensitive():
    # "Paris" vs "paris" is not agreement for the stopping rule (exact comparison, §4.1)
    tree = tree_from_reference(
        T.ref_tree("case", ["paris"], [(1, -1, 0, "Paris", None), (2, 1, 1, "Paris", "paris")])
    )
    assert not analyze_tree(tree).dropped_all_agree


def test_replicas_of_a_question_share_its_split():
    # 12 questions x 3 trees each (ids q, q-r1, q-r2, as the orchestrator names replicas)
    trees = []
    for i in range(12):
        ref = copy.deepcopy(T.RESIST)
        ref["metadata"]["question_id"] = f"q{i}"
        base = tree_from_reference(ref)
        trees += [base.model_copy(update={"id": f"q{i}" if j == 0 else f"q{i}-r{j}"}) for j in range(3)]
    result = build_preferences(trees, "resist", seed=4, fractions=(0.5, 0.25, 0.25))
    splits: dict[str, set[str]] = {}
    for row in result.records:
        splits.setdefault(row["tree_id"].split("-r")[0], set()).add(row["split"])
    assert len(splits) == 12 and all(len(s) == 1 for s in splits.values())
    assert {s for v in splits.values() for s in v} == {"train", "dev", "test"}
    # one tree per question: the split by question is the split by tree it always was
    singles = build_preferences(trees[::3], "resist", seed=4, fractions=(0.5, 0.25, 0.25))
    assert {r["tree_id"]: r["split"] for r in singles.records} == {
        r["tree_id"]: r["split"] for r in result.records if "-r" not in r["tree_id"]
    }
