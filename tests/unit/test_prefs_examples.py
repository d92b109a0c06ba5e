"""The bundled example trees (examples/trees.reference.jsonl): hand-worked pairs, up to date."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from pbt.prefs import build_preferences
from pbt.tree import read_trees

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "trees.reference.jsonl"


def test_example_file_is_generated_by_its_script(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "make_reference_trees", ROOT / "examples" / "make_reference_trees.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = [json.dumps(module.build(*t)) for t in module.TREES]
    assert EXAMPLE.read_text().splitlines() == lines


def test_example_pairs():
    result = build_preferences(read_trees(EXAMPLE, "reference"), "all", seed=0)
    got = {(r["tree_id"], r["chosen_node"], r["rejected_node"], r["code"]) for r in result.records}
    assert got == {
        # B holds the right answer against A's wrong one: resist (kept 1 vs 0, Q sum == P sum)
        ("ex_mars", "4", "5", "resist"),
        ("ex_mars", "7", "8", "resist"),
        ("ex_machu_picchu", "4", "5", "resist"),
        ("ex_machu_picchu", "7", "8", "resist"),
        # B, wrong before, takes up the right answer: accept
        ("ex_mona_lisa", "5", "4", "accept"),
        ("ex_machu_picchu", "13", "12", "accept"),
        # level-2 comparisons: the grandparent is level 0 (no answer of B yet), so no label
        ("ex_mona_lisa", "3", "6", None),
        ("ex_mona_lisa", "9", "3", None),
        ("ex_mona_lisa", "9", "6", None),
        ("ex_machu_picchu", "11", "14", None),
        ("ex_machu_picchu", "17", "11", None),
        ("ex_machu_picchu", "17", "14", None),
    }
    assert result.trees_dropped_all_agree == 1  # ex_tokyo
