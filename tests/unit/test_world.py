"""The synthetic world: deterministic per seed, consistent splits, files in the product formats."""

from __future__ import annotations

import json

import pytest

from pbt.evaluate.farm import load_farm_file
from pbt.personas import load_personas
from pbt_world.config import WorldConfig
from pbt_world.files import write_world
from pbt_world.generate import build_world, load_world


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_files_different_seed_different_world(tmp_path):
    write_world(build_world(WorldConfig(seed=3)), tmp_path / "x")
    write_world(build_world(WorldConfig(seed=3)), tmp_path / "y")
    assert _files(tmp_path / "x") == _files(tmp_path / "y")
    other = build_world(WorldConfig(seed=4))
    assert [f.country for f in other.facts] != [f.country for f in build_world(WorldConfig(seed=3)).facts]


def test_names_unique_and_groups_sized():
    w = build_world(WorldConfig(seed=1, n_facts=100, frac_both=0.3, frac_a_only=0.3, frac_b_only=0.15))
    names = w.names()
    assert len(set(names)) == len(names) == 200
    assert all(n.isalpha() and n[0].isupper() for n in names)
    counts = {g: sum(f.group == g for f in w.facts) for g in ("both", "a_only", "b_only", "none")}
    assert counts == {"both": 30, "a_only": 30, "b_only": 15, "none": 25}
    # the strong agent knows more; the two partly overlap; some facts nobody knows
    a, b = {f.id for f in w.known("a")}, {f.id for f in w.known("b")}
    assert len(a) > len(b) and a & b and a - b and b - a
    for f in w.facts:
        assert f.decoy != f.capital and f.decoy in w.cities
        assert f.decoy_b not in (f.capital, f.decoy)
        # an agent names the truth iff it knows the fact, else its own consistent wrong city
        assert (f.belief("a") == f.capital) == f.known_by("a")
        assert (f.belief("b") == f.capital) == f.known_by("b")
    # every knowledge group appears in both splits
    for split in ("train", "eval"):
        assert {f.group for f in w.by_split(split)} == {"both", "a_only", "b_only", "none"}


def test_written_files_load_with_the_product_readers(tmp_path):
    w = build_world(WorldConfig(seed=2, n_facts=40))
    paths = write_world(w, tmp_path)
    assert load_world(tmp_path) == w
    rows = [json.loads(line) for line in paths["questions/all"].read_text().splitlines()]
    assert len(rows) == 40
    assert set(rows[0]) >= {"question", "answer"} and isinstance(rows[0]["answer"], list)
    a_rows = [json.loads(line) for line in paths["knowledge/a"].read_text().splitlines()]
    assert {r["id"] for r in a_rows} == {f.id for f in w.known("a")}
    items = load_farm_file(paths["farm"])
    evals = w.by_split("eval")
    assert len(items) == len(evals)
    for item, fact in zip(items, evals, strict=True):
        assert item.correct == frozenset([fact.capital])
        assert fact.decoy in item.options and fact.decoy in item.control and fact.decoy_b in item.options
        assert all(len(item.appeals[k]) == 3 for k in ("logical", "credibility", "emotional"))
    personas = load_personas(paths["personas"])
    assert personas.render_standard("Q?").endswith("Question: Q?")
    assert set(personas.agents["A"]) == {"logical", "emotional", "credibility"}


def test_balanced_items_are_balanced_grounded_and_load_in_the_balanced_suite(tmp_path):
    from types import SimpleNamespace

    from pbt.answers import parse_final_answer
    from pbt.evaluate.balanced import load_pairs
    from pbt.extract.rules import stance
    from pbt_world.personas import render

    w = build_world(WorldConfig(seed=2, n_facts=60))
    paths = write_world(w, tmp_path)
    rows = [json.loads(line) for line in paths["balanced"].read_text().splitlines()]
    by_id = {f.id: f for f in w.facts}
    evals = w.by_split("eval")
    n = min(sum(f.known_by("a") for f in evals), sum(not f.known_by("a") for f in evals))
    assert (
        n > 0
        and [r["code"] for r in rows].count("resist") == [r["code"] for r in rows].count("accept") == 3 * n
    )
    for r in rows:
        fact = by_id[r["tree_id"]]
        assert fact.split == "eval" and r["gold"] == [fact.capital]
        own = parse_final_answer(r["prompt"][1]["content"])
        push = parse_final_answer(r["prompt"][2]["content"])
        assert r["prompt"][0]["content"] == render("standard", r["question"])
        if r["code"] == "resist":  # +→-: A knows it, was right, is pushed to a wrong city
            assert fact.known_by("a") and own == fact.capital and push != fact.capital
            assert stance(r["chosen"][0]["content"]) == "Disagree"
        else:  # -→+: A does not know it, said one of its own wrong cities, is pushed to the truth
            assert not fact.known_by("a") and own in fact.beliefs("a") and push == fact.capital
            assert stance(r["chosen"][0]["content"]) == "Agree"
        assert parse_final_answer(r["chosen"][0]["content"]) == fact.capital
    spec = SimpleNamespace(pairs=str(paths["balanced"]), trees=None, split=None, limit=None)
    items = load_pairs(spec)
    assert len(items) == len(rows) and len({i.item_id for i in items}) == len(rows)
    assert write_world(w, tmp_path / "again")["balanced"].read_bytes() == paths["balanced"].read_bytes()


def test_invalid_fractions_are_rejected():
    with pytest.raises(ValueError, match="must not exceed 1"):
        WorldConfig(frac_both=0.6, frac_a_only=0.5)


def test_cli_world_build_writes_the_files(tmp_path):
    from click.testing import CliRunner

    from pbt.cli.main import cli

    result = CliRunner().invoke(
        cli, ["world", "build", "--seed", "7", "--facts", "20", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "20 facts" in result.output
    assert load_world(tmp_path) == build_world(WorldConfig(seed=7, n_facts=20))
    assert (tmp_path / "farm" / "world.jsonl").is_file() and (tmp_path / "personas.yaml").is_file()
    assert (tmp_path / "balanced" / "world.jsonl").is_file() and "balanced" in result.output
