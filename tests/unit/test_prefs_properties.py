"""Property tests of the preference engine on random trees of the paper's shape (hypothesis)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbt.prefs import analyze_tree, build_preferences, split_questions
from pbt.tree.model import Question, Tree
from pbt.tree.reference import tree_from_reference, tree_to_reference

VOCAB = ["Paris", "paris", "London", "Agree", "agree", "Disagree", "NONE", "Diego Rivera", "Rivera", None]
BRANCHING = (1, 2, 3, 2)  # children per level: level 0 has one node, then 2, 3, 2 per parent


def random_tree(seed: int, tree_id: str) -> Tree:
    rng = random.Random(seed)
    gold = rng.sample(["paris", "diego rivera", "london"], rng.randint(1, 2))
    tree = Tree(id=tree_id, question=Question(id=tree_id, text="q?", gold=gold))
    root = tree.add_node(parent=None, agent=0, text="t0", answers=[rng.choice(VOCAB), None])
    frontier = [root]
    for depth in range(1, 4):
        nxt = []
        for parent in frontier:
            if rng.random() < 0.2:  # the branch stopped (agreement) or was cut
                continue
            agent = depth % 2
            for i in range(BRANCHING[depth]):
                answers = list(parent.answers)
                answers[agent] = rng.choice(VOCAB)
                node = tree.add_node(parent=parent.id, agent=agent, text=f"t{depth}.{i}", answers=answers)
                nxt.append(node)
        frontier = nxt
    return tree


seeds = st.lists(st.integers(0, 10**9), min_size=1, max_size=25, unique=True)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(seeds)
@SETTINGS
def test_pair_invariants(tree_seeds):
    for s in tree_seeds:
        tree = random_tree(s, f"t{s}")
        analysis = analyze_tree(tree)
        seen = set()
        for p in analysis.pairs:
            chosen, rejected = tree.nodes[p.chosen], tree.nodes[p.rejected]
            assert chosen.parent == rejected.parent == p.parent
            assert p.chosen_score > p.rejected_score >= 0
            assert 2 * (p.chosen_score - p.rejected_score) > p.chosen_score
            assert len(chosen.children) == len(rejected.children)
            assert (
                p.chosen_score == analysis.scores[p.chosen]
                and p.rejected_score == analysis.scores[p.rejected]
            )
            key = frozenset((p.chosen, p.rejected))
            assert key not in seen
            seen.add(key)
            if p.code is not None:
                assert chosen.depth >= 2  # the grandparent must hold both answers
                own = analysis.correctness[p.chosen][p.agent]
                assert own and not analysis.correctness[p.rejected][p.agent]


@given(seeds, st.integers(0, 1000))
@SETTINGS
def test_modes_and_splits(tree_seeds, seed):
    trees = [random_tree(s, f"t{s}") for s in tree_seeds]
    results = {
        mode: build_preferences(trees, mode, seed=seed)
        for mode in ("all", "labelled", "accept", "resist", "pbt")
    }
    keys = {
        m: [(r["tree_id"], r["chosen_node"], r["rejected_node"], r["code"]) for r in res.records]
        for m, res in results.items()
    }
    assert set(keys["labelled"]) == {k for k in keys["all"] if k[3] is not None}
    assert set(keys["accept"]) == {k for k in keys["labelled"] if k[3] == "accept"}
    assert set(keys["resist"]) == {k for k in keys["labelled"] if k[3] == "resist"}
    assert set(keys["pbt"]) <= set(keys["labelled"])
    pbt = results["pbt"].records
    for split in ("train", "dev", "test"):
        codes = [r["code"] for r in pbt if r["split"] == split]
        assert codes.count("accept") == codes.count("resist")
        n_accept = sum(1 for r in results["accept"].records if r["split"] == split)
        n_resist = sum(1 for r in results["resist"].records if r["split"] == split)
        assert codes.count("accept") == min(n_accept, n_resist)
    # a tree lives in exactly one split, the same in every mode
    split_of: dict[str, str] = {}
    for res in results.values():
        for r in res.records:
            assert split_of.setdefault(r["tree_id"], r["split"]) == r["split"]
    # deterministic for a seed, independent of input order
    again = build_preferences(list(reversed(trees)), "pbt", seed=seed)
    assert sorted(map(str, again.records)) == sorted(map(str, pbt))


@given(st.integers(0, 500), st.integers(0, 100))
@settings(max_examples=50, deadline=None)
def test_split_fractions(n, seed):
    ids = [f"q{i}" for i in range(n)]
    split = split_questions(ids, seed)
    counts = {s: list(split.values()).count(s) for s in ("train", "dev", "test")}
    assert sum(counts.values()) == n
    assert abs(counts["dev"] - 0.15 * n) <= 0.5 and abs(counts["test"] - 0.15 * n) <= 0.5
    assert split_questions(reversed(ids), seed) == split


@given(seeds)
@SETTINGS
def test_reference_round_trip_on_random_trees(tree_seeds):
    for s in tree_seeds:
        tree = random_tree(s, f"t{s}")
        ref = tree_to_reference(tree)
        back = tree_from_reference(ref)
        assert tree_to_reference(back) == ref
        assert [n.answers for n in back.nodes.values()] == [n.answers for n in tree.nodes.values()]
        assert {(p.chosen, p.rejected, p.code) for p in analyze_tree(back).pairs} == {
            (p.chosen, p.rejected, p.code) for p in analyze_tree(tree).pairs
        }
