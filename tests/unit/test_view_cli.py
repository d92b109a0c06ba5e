"""`pbt view` on a local store of hand-built trees (no browser): the files, the index data, errors."""

from __future__ import annotations

import copy
import json

import prefs_trees as T
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.store import LocalStore
from pbt.tree.io import tree_to_json_line
from pbt.tree.reference import tree_from_reference
from pbt.view.model import INDEX_COLUMNS


def _store(tmp_path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    for ref in (T.RESIST, T.ACCEPT, T.ALL_AGREE, T.NOTHING):
        tree = tree_from_reference(copy.deepcopy(ref))
        store.put_text(f"trees/job/{tree.id}.json", tree_to_json_line(tree) + "\n")
    return store


def _index(site) -> dict:
    text = (site / "trees" / "index-data.js").read_text()
    assert text.startswith("window.PBT_INDEX=") and text.endswith(";\n")
    return json.loads(text[len("window.PBT_INDEX=") : -2])


def test_view_trees_writes_a_page_per_tree_and_the_index_data(tmp_path):
    _store(tmp_path)
    out = tmp_path / "site"
    result = CliRunner().invoke(
        cli, ["view", "trees", "job", "--store", str(tmp_path / "store"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"site: {out.resolve() / 'index.html'}" in result.output
    assert sorted(p.name for p in (out / "trees").glob("*.html")) == [
        "t-accept.html",
        "t-agree.html",
        "t-nothing.html",
        "t-resist.html",
    ]
    assert (out / "assets/view.css").is_file() and (out / "assets/index.js").is_file()
    index = _index(out)
    assert index["columns"] == list(INDEX_COLUMNS) and index["base"] == "trees/"
    rows = {r[0]: dict(zip(INDEX_COLUMNS, r, strict=True)) for r in index["rows"]}
    assert {k: (r["pairs"], r["accept"], r["resist"], r["agree"]) for k, r in rows.items()} == {
        "t-resist": (2, 0, 2, 0),
        "t-accept": (3, 3, 0, 0),
        "t-agree": (0, 0, 0, 1),
        "t-nothing": (0, 0, 0, 0),
    }
    assert all(r["split"] is None for r in rows.values())  # no preference output: no split
    page = (out / "trees/t-resist.html").read_text()
    assert 'data-node="7" data-roles="chosen"' in page and 'data-node="8" data-roles="rejected"' in page
    assert '<link rel="stylesheet" href="../assets/view.css">' in page


def test_view_trees_with_a_preference_output_shows_splits_and_files(tmp_path):
    from pbt.orchestrate.preferences import extract_preferences

    store = _store(tmp_path)
    extract_preferences(store, "job", output_id="p1", seed=3)
    seen = []
    from pbt.view.site import write_trees_site

    site = write_trees_site(store, "job", tmp_path / "site", progress=lambda *a: seen.append(a))
    rows = [dict(zip(INDEX_COLUMNS, r, strict=True)) for r in _index(tmp_path / "site")["rows"]]
    assert {r["split"] for r in rows} <= {"train", "dev", "test"} and all(r["split"] for r in rows)
    assert ("tree pages", 4, 4) in seen and ("reading questions", 4, 4) in seen
    assert site.notes == ["pairs, splits and filter from preference output 'p1'"]
    page = (tmp_path / "site/trees/t-accept.html").read_text()
    assert "(in accept" in page  # the files that hold the pair


def test_view_to_store_and_errors(tmp_path):
    _store(tmp_path)
    runner = CliRunner()
    args = ["--store", str(tmp_path / "store")]
    made = runner.invoke(cli, ["view", "trees", "job", *args, "--to-store", "--quiet"])
    assert made.exit_code == 0, made.output
    assert made.output.strip() == f"file://{tmp_path}/store/trees/job/_site/index.html"
    assert (tmp_path / "store/trees/job/_site/trees/t-resist.html").is_file()
    from pbt.orchestrate.job import list_tree_keys

    assert len(list_tree_keys(LocalStore(tmp_path / "store"), "job")) == 4  # the site is not a tree
    for kind, item, message in (
        ("trees", "nope", "no trees under"),
        ("prefs", "nope", "no preference output 'nope'"),
        ("eval", "nope", "evaluation 'nope' not found"),
        ("demo", "nope", "no demo report"),
    ):
        bad = runner.invoke(cli, ["view", kind, item, *args, "--out", str(tmp_path / "x")])
        assert bad.exit_code == 1 and message in bad.output, bad.output
    assert "view" in runner.invoke(cli, ["--help"]).output
