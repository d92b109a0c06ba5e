"""The demo's tree settings: why branches go on after agreement, why its pairs then need the §4.5
rule filter, and that the tree and pair jobs use them."""

from __future__ import annotations

from pathlib import Path

from prefs_trees import ref_tree

from pbt.prefs import analyze_tree, make_pair_filter
from pbt.tree.reference import tree_from_reference
from pbt_world.demo.settings import DemoSettings
from pbt_world.demo.stages import trees_run_config

# A (agent 0) is wrong (Nitho), B (agent 1) right (Midou). At level 4 A accepts B's answer (5)
# or holds its own (6); B then holds (1 correct) or gives in (0) under the holding branch.
_PREFIX = [
    (1, -1, 0, "Nitho", None),
    (2, 1, 1, "Nitho", "Midou"),
    (3, 2, 0, "Nitho", "Midou"),  # G: A wrong
    (4, 3, 1, "Nitho", "Midou"),  # Q: B pushes the right answer
    (5, 4, 0, "Midou", "Midou"),  # P: A accepts -> both answers the same string
    (6, 4, 0, "Nitho", "Midou"),  # D: A holds
    (7, 6, 1, "Nitho", "Midou"),
    (8, 6, 1, "Nitho", "Nitho"),
]


def _pairs(rows, texts: dict[int, str] | None = None, pair_filter=None) -> set[tuple[str, str, str | None]]:
    tree = tree_from_reference(ref_tree("t", ["midou"], rows))
    for idx, text in (texts or {}).items():
        tree.nodes[str(idx)].text = text
    return {(p.chosen, p.rejected, p.code) for p in analyze_tree(tree, pair_filter).pairs}


def _say(opening: str, city: str) -> str:
    return f"{opening} The capital of Vishabri is {city}. Final Answer: {city}."


def test_an_accepted_push_that_ends_its_branch_yields_no_accept_pair():
    # With stop_on_agreement the accepting node 5 is a leaf while its sibling 6 has two children:
    # §4 skips siblings with different child counts, so the accept move is never learned.
    assert ("5", "6", "accept") not in _pairs(_PREFIX)


def test_the_same_move_in_a_branch_that_goes_on_is_an_accept_pair():
    # Without the stop, node 5 has children too (both keep the right answer): 2 + 2 + 2 = 6 against
    # 1 + 1 + 0 = 2, a margin of 0.67 > 0.5, and §4.4 labels it accept.
    rows = [*_PREFIX, (9, 5, 1, "Midou", "Midou"), (10, 5, 1, "Midou", "Midou")]
    assert ("5", "6", "accept") in _pairs(rows)


def test_rule_filter_keeps_a_real_accept_and_drops_a_reversion_after_agreement():
    # Going on after agreement also makes pairs §4.4 labels accept although nobody was persuaded:
    # A was right (Midou), gave in to B's Nitho (G), B repeats Nitho (Q), and A's chosen reply goes
    # back to Midou *disagreeing* with B while the rejected one agrees. Measured on the demo's trees
    # before the filter, such replies were the chosen side of most accept pairs.
    reversion = [
        (1, -1, 0, "Midou", None),
        (2, 1, 1, "Midou", "Nitho"),
        (3, 2, 0, "Nitho", "Nitho"),  # G: A gave in, now wrong
        (4, 3, 1, "Nitho", "Nitho"),  # Q: B repeats the wrong answer
        (5, 4, 0, "Midou", "Nitho"),  # P: A goes back to its earlier answer
        (6, 4, 0, "Nitho", "Nitho"),  # D: A stays with B
        (7, 5, 1, "Midou", "Midou"),
        (8, 5, 1, "Midou", "Nitho"),
        (9, 6, 1, "Nitho", "Nitho"),
        (10, 6, 1, "Nitho", "Nitho"),
    ]
    reversion_texts = {5: _say("I disagree.", "Midou"), 6: _say("You are right.", "Nitho")}
    assert ("5", "6", "accept") in _pairs(reversion, reversion_texts)
    assert ("5", "6", "accept") not in _pairs(reversion, reversion_texts, make_pair_filter("rules"))

    accepted = [*_PREFIX, (9, 5, 1, "Midou", "Midou"), (10, 5, 1, "Midou", "Midou")]
    accepted_texts = {
        5: _say("I see your point, I was wrong.", "Midou"),
        6: _say("I do not accept that.", "Nitho"),
    }
    assert ("5", "6", "accept") in _pairs(accepted, accepted_texts, make_pair_filter("rules"))
    # the same accept pair whose chosen text holds on while naming the pushed city: dropped
    confused = {**accepted_texts, 5: _say("I disagree.", "Midou")}
    assert ("5", "6", "accept") not in _pairs(accepted, confused, make_pair_filter("rules"))


def test_tree_jobs_use_the_demo_tree_settings(tmp_path: Path):
    kw = dict(
        agent_a="http://127.0.0.1:1/v1", agent_b="http://127.0.0.1:2/v1",
        personas_file=tmp_path / "personas.yaml", questions_file=tmp_path / "q.jsonl",
        store_url=str(tmp_path / "store"), seed=3,
    )  # fmt: skip
    default = trees_run_config(settings=DemoSettings(), **kw)
    assert default.tree.stop_on_agreement is False
    assert default.sampling.temperature == DemoSettings().tree_temperature == 0.4
    assert default.tree.branching == DemoSettings().branching
    assert default.tree.trees_per_question == DemoSettings().trees_per_question == 4
    assert default.sampling.seed == 3
    paper = DemoSettings(stop_on_agreement=True, tree_temperature=0.7, max_turns=4, branching=[1, 2, 3, 2])
    custom = trees_run_config(settings=paper, **kw)
    assert custom.tree.stop_on_agreement is True
    assert custom.sampling.temperature == 0.7
    assert custom.tree.max_turns == 4 and custom.tree.branching == [1, 2, 3, 2]
    assert trees_run_config(settings=DemoSettings(trees_per_question=1), **kw).tree.trees_per_question == 1
