"""The demo's tree settings: why branches go on after agreement, and that the tree jobs use them."""

from __future__ import annotations

from pathlib import Path

from prefs_trees import ref_tree

from pbt.prefs import analyze_tree
from pbt.tree.reference import tree_from_reference
from pbt.world.demo.settings import DemoSettings
from pbt.world.demo.stages import trees_run_config

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


def _pairs(rows) -> set[tuple[str, str, str | None]]:
    tree = tree_from_reference(ref_tree("t", ["midou"], rows))
    return {(p.chosen, p.rejected, p.code) for p in analyze_tree(tree).pairs}


def test_an_accepted_push_that_ends_its_branch_yields_no_accept_pair():
    # With stop_on_agreement the accepting node 5 is a leaf while its sibling 6 has two children:
    # §4 skips siblings with different child counts, so the accept move is never learned.
    assert ("5", "6", "accept") not in _pairs(_PREFIX)


def test_the_same_move_in_a_branch_that_goes_on_is_an_accept_pair():
    # Without the stop, node 5 has children too (both keep the right answer): 2 + 2 + 2 = 6 against
    # 1 + 1 + 0 = 2, a margin of 0.67 > 0.5, and §4.4 labels it accept.
    rows = [*_PREFIX, (9, 5, 1, "Midou", "Midou"), (10, 5, 1, "Midou", "Midou")]
    assert ("5", "6", "accept") in _pairs(rows)


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
    assert default.sampling.seed == 3
    paper = DemoSettings(stop_on_agreement=True, tree_temperature=0.7, max_turns=4, branching=[1, 2, 3, 2])
    custom = trees_run_config(settings=paper, **kw)
    assert custom.tree.stop_on_agreement is True
    assert custom.sampling.temperature == 0.7
    assert custom.tree.max_turns == 4 and custom.tree.branching == [1, 2, 3, 2]
