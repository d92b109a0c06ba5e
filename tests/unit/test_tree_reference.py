"""Lossless import/export of the reference implementation's trajectory files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import prefs_trees as T
import pytest

from pbt.errors import ValidationError
from pbt.tree.io import load_trees, read_trees, write_trees
from pbt.tree.reference import tree_from_reference, tree_to_reference


def realistic() -> dict:
    """A reference line shaped like the reference's own output, with oddities it can contain."""
    ref = T.ref_tree(
        "tc_42_0",
        ["paris", "paris france"],
        [
            (1, -1, 0, "London", None),
            (2, 1, 1, "London", "Paris"),
            (3, 1, 1, "London", "London"),
        ],
        question="What is the capital of France?",
    )
    ref["data"][1]["extracted_conf"] = 0.8125  # a real confidence
    ref["data"][2]["extracted_conf"] = -1  # int sentinel
    ref["data"][3]["extracted_conf"] = 1  # an int that is not a probability float
    ref["data"][3]["note"] = {"kept": True}  # unknown node key
    ref["metadata"]["answer"]["value"] = "Paris"
    ref["metadata"]["entity_pages"] = {"doc_source": []}
    ref["extra_top"] = [1, 2]  # unknown top-level key
    return ref


def test_import_reads_answers_from_the_swapped_slots_and_the_tree_id():
    tree = tree_from_reference(realistic())
    assert tree.id == "tc_42_0" and tree.question.id == "tc_42_0"
    assert tree.question.text == "What is the capital of France?"
    assert tree.question.gold == ["paris", "paris france"]
    assert [a.model for a in tree.agents] == ["model-a", "model-b"]
    # extracted_ans = [B, A]; answers = [A, B]
    assert tree.nodes["1"].answers == ["London", None]
    assert tree.nodes["2"].answers == ["London", "Paris"]
    assert tree.nodes["1"].parent is None and tree.nodes["2"].parent == "1"
    assert [n.depth for n in tree.nodes.values()] == [0, 1, 1]
    assert tree.nodes["1"].confidence == [0.8125, None]
    assert tree.nodes["2"].persona == "resistant" and tree.nodes["3"].persona == "acceptant"
    assert tree.nodes["1"].persona is None  # the level-0 prompt is not recorded by the reference


@pytest.mark.parametrize("ref", [realistic(), T.RESIST, T.ACCEPT, T.LEVELS, T.NOTHING, T.ALL_AGREE])
def test_round_trip_is_lossless(ref):
    original = copy.deepcopy(ref)
    assert tree_to_reference(tree_from_reference(ref)) == original
    assert ref == original  # import does not modify its input


def test_round_trip_through_native_files(tmp_path: Path):
    refs = [realistic(), T.RESIST, T.ACCEPT]
    src = tmp_path / "ref.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in refs))
    native = tmp_path / "native.jsonl"
    write_trees(native, read_trees(src, "reference"))
    back = tmp_path / "back.jsonl"
    write_trees(back, read_trees(native), fmt="reference")
    assert [json.loads(line) for line in back.read_text().splitlines()] == refs
    assert [t.id for t in read_trees(src, "auto")] == ["tc_42_0", "t-resist", "t-accept"]


def test_gold_alias_fallbacks():
    ref = realistic()
    del ref["metadata"]["answer"]["normalized_aliases"]
    assert tree_from_reference(ref).question.gold == ["Paris", "Paris France"]
    del ref["metadata"]["answer"]
    ref["answers"] = ["paris"]
    assert tree_from_reference(ref).question.gold == ["paris"]


def test_question_text_falls_back_to_the_root_prompt():
    ref = realistic()
    del ref["metadata"]["question"]
    assert tree_from_reference(ref).question.text == "What is the capital of France?"


def test_native_tree_exports_to_a_reference_line():
    from test_tree_model import small_tree

    tree = small_tree()
    ref = tree_to_reference(tree)
    assert ref["data"][0]["node_idx"] == -1 and ref["data"][0]["children"] == [0]
    assert ref["metadata"]["question_id"] == "q1"
    assert ref["metadata"]["answer"]["normalized_aliases"] == ["john milton"]
    assert ref["data"][2]["extracted_ans"] == ["Shakespeare", "John Milton"]
    back = tree_from_reference(ref)
    assert [(n.id, n.parent, n.children, n.answers, n.text) for n in back.nodes.values()] == [
        (n.id, n.parent, n.children, n.answers, n.text) for n in tree.nodes.values()
    ]


def _bad(mutate):
    ref = copy.deepcopy(T.RESIST)
    mutate(ref)
    return ref


BAD = {
    "no-data": (_bad(lambda r: r.pop("data")), "data", "missing field"),
    "no-question-id": (_bad(lambda r: r["metadata"].pop("question_id")), "metadata.question_id", "missing"),
    "node-field": (
        _bad(lambda r: r["data"][3].pop("extracted_ans")),
        "data[3].extracted_ans",
        "missing field",
    ),
    "dangling-parent": (_bad(lambda r: r["data"][4].update(parent=99)), "data[4].parent", "dangling parent"),
    "cycle": (
        _bad(lambda r: (r["data"][1].update(parent=2), r["data"][0].update(children=[]))),
        "data[1].parent",
        "cycle",
    ),
    "duplicate-id": (
        _bad(lambda r: r["data"][3].update(node_idx=2)),
        "data[3].node_idx",
        "duplicate node id",
    ),
    "bad-agent": (_bad(lambda r: r["data"][3].update(agent_idx=5)), "data[3].agent_idx", "must be 0 or 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_reference_input(tmp_path: Path, case: str):
    ref, field, message = BAD[case]
    path = tmp_path / "ref.jsonl"
    path.write_text(json.dumps(T.ACCEPT) + "\n" + json.dumps(ref) + "\n")
    with pytest.raises(ValidationError) as info:
        read_trees(path, "reference")
    assert info.value.location == f"{path}:2"
    assert info.value.field == field
    assert message in info.value.message
    loaded = load_trees([path], "reference", skip_invalid=True)
    assert [t.id for t in loaded.trees] == ["t-accept"] and loaded.skipped[0].location == f"{path}:2"
