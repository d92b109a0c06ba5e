"""The pbt.tree/v1 model, its file I/O, the published JSON Schema and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pbt.errors import ValidationError
from pbt.schemas import load_schema
from pbt.tree import Question, Tree, read_trees, tree_from_dict, tree_to_json_line, write_trees
from pbt.tree.io import load_trees
from pbt.tree.model import StructureError


def small_tree(tree_id: str = "q1") -> Tree:
    tree = Tree(
        id=tree_id, question=Question(id=tree_id, text="Who wrote Paradise Lost?", gold=["john milton"])
    )
    root = tree.add_node(
        parent=None, agent=0, text="John Milton.", answers=["John Milton", None], persona="logical"
    )
    for persona, ans in (("resistant", "Shakespeare"), ("acceptant", "John Milton")):
        b = tree.add_node(
            parent=root.id, agent=1, text=f"I say {ans}.", answers=["John Milton", ans], persona=persona
        )
        tree.add_node(
            parent=b.id,
            agent=0,
            text="Milton!",
            answers=["Milton", ans],
            persona="logical",
            confidence=[0.9, None],
            usage={"prompt_tokens": 12, "completion_tokens": 5},
            messages=[{"role": "user", "content": "hi"}],
        )
    return tree


def test_helpers_and_navigation():
    tree = small_tree()
    assert tree.root().id == "0"
    assert [n.id for n in tree.children_of("0")] == ["1", "3"]
    assert [n.id for n in tree.level(2)] == ["2", "4"]
    assert [n.id for n in tree.path_to("4")] == ["0", "3", "4"]
    assert [n.id for n in tree.walk()] == ["0", "1", "2", "3", "4"]
    assert [n.id for n in tree.siblings_of("1")] == ["3"]
    assert tree.nodes["4"].depth == 2 and tree.max_depth == 2
    assert tree.parent_of("0") is None and tree.parent_of("2").id == "1"


def test_add_node_rejects_duplicates_and_unknown_parents():
    tree = small_tree()
    with pytest.raises(StructureError, match="duplicate"):
        tree.add_node(parent="0", agent=1, node_id="1")
    with pytest.raises(StructureError, match="does not exist"):
        tree.add_node(parent="99", agent=1)


def test_json_line_round_trip_and_schema(tmp_path: Path):
    trees = [small_tree("a"), small_tree("b")]
    path = tmp_path / "trees.jsonl"
    assert write_trees(path, trees) == 2
    assert read_trees(path) == trees
    validator = jsonschema.Draft202012Validator(load_schema("tree.v1"))
    for line in path.read_text().splitlines():
        validator.validate(json.loads(line))
        assert line == tree_to_json_line(tree_from_dict(json.loads(line)))
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writer leaves no temporary file


def test_nodes_are_a_list_in_the_file():
    data = json.loads(tree_to_json_line(small_tree()))
    assert isinstance(data["nodes"], list) and data["nodes"][0]["id"] == "0"
    assert data["schema"] == "pbt.tree/v1"
    assert (
        small_tree().model_dump()["schema"] == "pbt.tree/v1"
    )  # the alias everywhere, not the attribute name


def _line(mutate) -> str:
    data = json.loads(tree_to_json_line(small_tree()))
    mutate(data)
    return json.dumps(data)


def _node(data, node_id):
    return next(n for n in data["nodes"] if n["id"] == node_id)


BAD_LINES = {
    "malformed": ('{"schema": "pbt.tree/v1", "id": ', None, "malformed JSON"),
    "missing-field": (_line(lambda d: d["question"].pop("text")), "question.text", "missing field"),
    "missing-schema": (_line(lambda d: d.pop("schema")), "schema", "missing field"),
    "unknown-schema": (_line(lambda d: d.update(schema="pbt.tree/v9")), "schema", "unknown schema version"),
    "dangling-parent": (
        _line(lambda d: _node(d, "2").update(parent="77")),
        "nodes[id=2].parent",
        "dangling parent",
    ),
    "cycle": (
        _line(
            lambda d: (
                _node(d, "1").update(parent="2", depth=3),
                _node(d, "2").update(children=["1"]),
                _node(d, "0").update(children=["3"]),
            )
        ),
        "nodes[id=1].parent",
        "cycle",
    ),
    "duplicate-id": (
        _line(lambda d: d["nodes"].append(dict(d["nodes"][1]))),
        "nodes[5].id",
        "duplicate node id",
    ),
    "bad-answers": (_line(lambda d: _node(d, "1").update(answers=["x"])), "nodes[id=1].answers", "exactly 2"),
    "bad-agent": (_line(lambda d: _node(d, "1").update(agent=2)), "nodes[id=1].agent", ""),
    "node-without-id": (_line(lambda d: d["nodes"][1].pop("id")), "nodes[1].id", "missing field"),
    "numeric-node-id": (_line(lambda d: d["nodes"][1].update(id=1)), "nodes[1].id", "must be a string"),
    "not-an-object": ("[1, 2]", None, "expected a JSON object"),
    "wrong-depth": (_line(lambda d: _node(d, "2").update(depth=5)), "nodes[id=2].depth", "depth 5"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_input_names_file_line_and_field(tmp_path: Path, case: str):
    line, field, message = BAD_LINES[case]
    path = tmp_path / "trees.jsonl"
    good = tree_to_json_line(small_tree("ok"))
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(ValidationError) as info:
        read_trees(path)
    err = info.value
    assert err.location == f"{path}:3"
    assert err.field == field
    assert message in err.message
    assert str(err).startswith(f"{path}:3")
    # --skip-invalid: the good tree survives and the bad line is reported with its reason
    loaded = load_trees([path], skip_invalid=True)
    assert [t.id for t in loaded.trees] == ["ok"]
    assert len(loaded.skipped) == 1 and loaded.skipped[0].location == f"{path}:3"
    assert message in loaded.skipped[0].reason


def test_cycle_without_any_root_link(tmp_path: Path):
    data = json.loads(tree_to_json_line(small_tree()))
    # 3 <-> 4 form a closed loop detached from the root
    _node(data, "0")["children"] = ["1"]
    _node(data, "3").update(parent="4", children=["4"], depth=3)
    _node(data, "4").update(parent="3", children=["3"], depth=4)
    with pytest.raises(ValidationError, match="cycle"):
        tree_from_dict(data, location="x:1")


def test_duplicate_tree_ids_across_files(tmp_path: Path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_trees(a, [small_tree("same")])
    write_trees(b, [small_tree("other"), small_tree("same")])
    with pytest.raises(ValidationError, match="duplicate tree id 'same'") as info:
        load_trees([a, b])
    assert info.value.location == f"{b}:2"
    loaded = load_trees([a, b], skip_invalid=True)
    assert [t.id for t in loaded.trees] == ["same", "other"] and len(loaded.skipped) == 1


def test_undecodable_line_and_unreadable_path(tmp_path: Path):
    path = tmp_path / "trees.jsonl"
    path.write_bytes(tree_to_json_line(small_tree()).encode() + b"\n\xff\xfe\n")
    with pytest.raises(ValidationError, match="not UTF-8") as info:
        read_trees(path)
    assert info.value.location == f"{path}:2"
    assert len(read_trees(path, skip_invalid=True)) == 1
    with pytest.raises(ValidationError, match="cannot read"):
        read_trees(tmp_path)


def test_missing_file():
    with pytest.raises(ValidationError, match="not found"):
        read_trees("/nonexistent/trees.jsonl")


@pytest.mark.parametrize(
    "case",
    ["missing-field", "missing-schema", "unknown-schema", "bad-answers", "bad-agent", "node-without-id"],
)
def test_published_schema_rejects_what_the_loader_rejects(case: str):
    validator = jsonschema.Draft202012Validator(load_schema("tree.v1"))
    assert not validator.is_valid(json.loads(BAD_LINES[case][0]))
