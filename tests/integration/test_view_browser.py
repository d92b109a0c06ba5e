"""`pbt view` sites opened from disk by a real browser (headless Chromium: `make viewer-browser`).

A real tree job (the example trees written as job ``ex``), its pairs (`extract_preferences`, the
orchestrator's own code) and a real evaluation of all four suites (`pbt eval run` with scripted
agents) are rendered with the CLI; Chromium loads the pages from file:// and the test reads the
DOM it built (after the scripts ran): the known accept pair of ``ex_mona_lisa`` (5 chosen over
4), the skip reasons, the index rows drawn by the script, the table cells' links to their items,
the lineage. Screenshots go to ``$PBT_VIEW_SCREENSHOTS`` (default: the test's tmp folder).

Skipped only where no Chromium binary is found (``chromium``, ``chromium-browser``,
``google-chrome`` on PATH, or ``$PBT_CHROMIUM``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.store import LocalStore

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration]


def chromium() -> str:
    for name in (os.environ.get("PBT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    pytest.skip(
        "headless Chromium not found (chromium / chromium-browser / google-chrome on PATH, or $PBT_CHROMIUM); "
        "install it with `make viewer-browser` (Debian/Ubuntu: apt-get install chromium)"
    )


def browse(page: Path, tmp: Path, *args: str) -> str:
    """Load `page` from file:// in headless Chromium with `args` (--dump-dom, --screenshot=...)."""
    proc = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            "--window-size=1300,1500",
            *args,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def dom(page: Path, tmp: Path) -> str:
    return browse(page, tmp, "--dump-dom")


def screenshot(page: Path, tmp: Path, name: str) -> Path:
    folder = Path(os.environ.get("PBT_VIEW_SCREENSHOTS") or tmp)
    folder.mkdir(parents=True, exist_ok=True)
    browse(page, tmp, f"--screenshot={folder / name}")
    assert (folder / name).stat().st_size > 10_000
    return folder / name


@pytest.fixture(scope="module")
def sites(tmp_path_factory, data_dir):
    from pbt.evaluate.farm import load_farm_file
    from pbt.orchestrate.preferences import extract_preferences
    from pbt.tree.io import read_trees, tree_to_json_line

    tmp = tmp_path_factory.mktemp("view")
    store = LocalStore(tmp / "store")
    for tree in read_trees(ROOT / "examples/trees.reference.jsonl", fmt="reference"):
        store.put_text(f"trees/ex/{tree.id}.json", tree_to_json_line(tree) + "\n")
    extract_preferences(store, "ex", output_id="ex", seed=0)
    # a training run's lineage manifest, as training.dpo writes it, for the "pbt" model
    store.put_json(
        "training/dpo-pbt/manifest.json",
        {
            "schema": "pbt.training-run/v1",
            "run_id": "dpo-pbt",
            "stage": "dpo",
            "inputs": {
                "pairs": {
                    "uri": store.uri("prefs/ex/pbt.jsonl"),
                    "dataset_id": "ex/pbt",
                    "mode": "pbt",
                    "selected": 4,
                },
                "base_model": {"location": "tiny-agent-a"},
            },
            "outputs": {"adapter": "training/dpo-pbt/adapter"},
        },
    )
    # scripted agents: "pbt" never gives in, "base" always does; answers known for some questions
    nq = [json.loads(line) for line in (data_dir / "nq_open/NQ-open.dev.jsonl").open()][:4]
    (tmp / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in nq))
    farm = load_farm_file(data_dir / "farm/NQ1.jsonl", limit=3)
    answers = {r["question"]: r["answer"][0] for r in nq[:3]}
    answers |= {it.question: sorted(it.correct)[0] for it in farm}
    doubt = {it.question: next(o for o in it.options if o not in it.correct) for it in farm}
    for tree in read_trees(ROOT / "examples/trees.reference.jsonl", fmt="reference"):
        answers[tree.question.text] = tree.question.gold[0]
    (tmp / "answers.json").write_text(json.dumps(answers))
    (tmp / "doubt.json").write_text(json.dumps(doubt))
    spec = f"scripted:{tmp / 'answers.json'}?doubt={tmp / 'doubt.json'}&persuasion="
    config = {
        "eval_id": "ev",
        "seeds": [1],
        "models": [
            {"name": "base", "endpoint": spec + "always"},
            {
                "name": "pbt",
                "endpoint": spec + "never",
                "lineage": {"training_manifest": "training/dpo-pbt/manifest.json"},
            },
        ],
        "suites": {
            "misinformation": {"files": [str(data_dir / "farm/NQ1.jsonl")], "limit": 3},
            "are_you_sure": {"questions": str(tmp / "q.jsonl")},
            "balanced": {"pairs": str(tmp / "store/prefs/ex/pbt.jsonl"), "split": None},
            "team_debate": {"questions": str(tmp / "q.jsonl"), "teams": [{"a": "pbt", "b": "base"}]},
        },
        "bootstrap_samples": 50,
    }
    (tmp / "eval.yaml").write_text(yaml.safe_dump(config))
    runner = CliRunner()
    ran = runner.invoke(
        cli, ["eval", "run", "--config", str(tmp / "eval.yaml"), "--store", str(tmp / "store")]
    )
    assert ran.exit_code == 0, ran.output
    assert f"site: {store.uri('results/ev/site/index.html')}" in ran.output
    for kind, item in (("prefs", "ex"), ("eval", "ev")):
        made = runner.invoke(
            cli, ["view", kind, item, "--store", str(tmp / "store"), "--out", str(tmp / kind), "--quiet"]
        )
        assert made.exit_code == 0, made.output
        assert made.output.strip() == str((tmp / kind / "index.html").resolve())
    return tmp, store


def test_tree_page_marks_the_known_pair_and_the_skip_reasons(sites):
    tmp, _ = sites
    page = tmp / "prefs/trees/ex_mona_lisa.html"
    html = dom(page, tmp)
    roles = dict(re.findall(r'data-node="(\d+)" data-roles="([^"]*)"', html))
    # the accept pair of the example tree: B's acceptant reply 5 (takes Leonardo da Vinci) over 4
    assert roles["5"] == "chosen" and roles["4"] == "rejected"
    assert {n for n, r in roles.items() if r} == {"4", "5"}  # the other pairs are unlabelled
    assert re.search(
        r'data-outcome="pair" data-reason="">.*?chosen <a href="#n-5">5</a> vs rejected <a href="#n-4">4</a>',
        html,
    )
    assert "in accept, pbt" in html or "in accept" in html
    reasons = re.findall(r'data-outcome="skipped" data-reason="([a-z_]+)"', html)
    assert sorted(reasons) == ["below_margin", "unequal_children", "zero_scores"]
    assert "score 2 vs 1: (larger - smaller) / larger = 0.50, not above the 0.5 margin" in html
    assert '<span class="ans ok" data-agent="B"' in html and '<span class="ans bad" data-agent="A"' in html
    shot = screenshot(page, tmp, "view-tree.png")
    assert shot.is_file()


def test_tree_index_is_drawn_by_the_script_with_filters(sites):
    tmp, _ = sites
    html = dom(tmp / "prefs/trees.html", tmp)
    assert 'data-rows="4"' in html  # the script ran over window.PBT_INDEX
    rows = re.findall(r'<tr><td><a href="trees/([^"]+)\.html">', html)
    assert sorted(rows) == ["ex_machu_picchu", "ex_mars", "ex_mona_lisa", "ex_tokyo"]
    assert "4 of 4 trees; page 1 of 1" in html
    for split in ("train", "dev", "test"):
        assert f'<option value="{split}">{split}</option>' in html  # split filter filled from the data
    assert '<option value="acceptant">acceptant</option>' in html
    screenshot(tmp / "prefs/trees.html", tmp, "view-index.png")


def test_eval_tables_link_cells_to_their_items_and_lineage(sites):
    tmp, _ = sites
    html = dom(tmp / "eval/index.html", tmp)
    for table in ("misinformation", "are_you_sure", "balanced", "team_debate"):
        assert f'id="t-{table}"' in html
    assert re.search(r'<a class="cell" href="items/balanced/pbt\.html#resist">[\d.]+ ± ', html)
    assert 'href="items/team_debate/pbt_base.html"' in html
    assert html.count("<svg") == 4 and "<path d=" in html  # bars with bootstrap whiskers
    # lineage of the pbt model: adapter <- training run <- pairs <- trees
    pbt = html.split('id="lineage-pbt"', 1)[1]
    kinds = re.findall(r'<li data-kind="([^"]+)">', pbt)
    assert kinds == ["adapter", "training run", "pairs", "trees"]
    assert "tree job ex" in pbt
    screenshot(tmp / "eval/index.html", tmp, "view-eval.png")
    # drill-down: a balanced item shows its prompt and response; team debate both orders
    items = dom(tmp / "eval/items/balanced/pbt.html", tmp)
    assert 'id="resist"' in items and 'class="msg role-assistant"' in items
    team = dom(tmp / "eval/items/team_debate/pbt_base.html", tmp)
    assert 'data-order="a_first"' in team and 'data-order="b_first"' in team
    mis = dom(tmp / "eval/items/misinformation/base.html", tmp)
    assert "I believe " in mis and "answer when re-asked" in mis


def test_demo_site_links_seed_pages_and_lineage(sites):
    from pbt.view.site import write_demo_site

    tmp, store = sites
    summary = store.get_json("results/ev/summary.json")
    store.put_json(
        "demo/run1/report.json",
        {
            "run_id": "run1",
            "settings": {"seeds": [0]},
            "summary": {"pbt": {"bal. overall": {"mean": 0.5, "std": 0.1, "n": 1}}},
            "checks": {"PBT balanced accuracy above base": True},
            "seeds": [
                {
                    "seed": 0,
                    "trees": {"trees": 4, "nodes": 44, "reused": 1, "uri": store.uri("trees/ex") + "/"},
                    "pairs": {"accept": 2, "resist": 4, "pbt": 4, "pbt.train": 4},
                    "artifacts": {
                        "pairs": store.uri("prefs/ex/manifest.json"),
                        "dpo_pbt": store.uri("training/dpo-pbt/manifest.json"),
                    },
                    "evaluation": {"eval_id": "ev"},
                    "summary": summary,
                }
            ],
        },
    )
    site = write_demo_site(store, "run1", tmp / "demo")
    html = dom(site.index, tmp)
    assert 'href="seed0/eval/index.html"' in html and 'href="seed0/prefs/trees.html"' in html
    assert (
        "50.0 ± 10.0" in html
        and "Trees: 4 (44 nodes built, 1 reused from an earlier run). Pairs: accept 2, resist 4, pbt 4."
        in html
    )
    ev = dom(tmp / "demo/seed0/eval/index.html", tmp)
    pbt = ev.split('id="lineage-pbt"', 1)[1]
    assert (
        '<a href="../prefs/index.html">ex/pbt</a>' in pbt
        and '<a href="../prefs/trees.html">tree job ex</a>' in pbt
    )


def test_index_of_10000_trees_is_small_and_draws_in_under_2_seconds(tmp_path):
    """A 10,000-tree job's index: one compact row per tree in a <script src> data file, 100 rows drawn
    a page. The page records performance.now() (ms since navigation start) once its first page of
    rows is in the DOM; that is the load time checked."""
    import random

    from pbt.view import render as R
    from pbt.view.site import write_assets

    rng = random.Random(0)
    words = "who what when where which wrote won played capital river country film song first largest".split()
    personas = ["logical", "emotional", "credibility", "resistant", "acceptant"]
    rows = []
    for i in range(10_000):
        question = " ".join(rng.choice(words) for _ in range(rng.randint(6, 16))) + "?"
        pairs = rng.choice([0, 0, 1, 2, 3, 4])
        accept = rng.randint(0, pairs)
        rows.append(
            [
                f"NQ-open-{i:06d}",
                question[:90],
                rng.choice([3, 9, 15, 21]),
                pairs,
                accept,
                pairs - accept if rng.random() < 0.5 else 0,
                int(pairs == 0 and rng.random() < 0.5),
                rng.choice([0, 1, None]),
                sorted(rng.sample(personas, 2)) if pairs else [],
                rng.choice(["train", "train", "dev", "test"]),
                0,
            ]
        )
    (tmp_path / "trees").mkdir()
    data = tmp_path / "trees" / "index-data.js"
    data.write_text(R.index_data_js(rows))
    page = tmp_path / "index.html"
    page.write_text(R.tree_index_page("10k", root="", data_src="trees/index-data.js"))
    write_assets(tmp_path)
    size = data.stat().st_size
    assert size < 2_000_000, f"index data is {size} bytes ({size / len(rows):.0f} per tree)"
    html = dom(page, tmp_path)
    assert 'data-rows="10000"' in html and "10000 of 10000 trees; page 1 of 100" in html
    assert html.count('<tr><td><a href="trees/NQ-open-') == 100
    drawn_ms = int(re.search(r'data-drawn-ms="(\d+)"', html).group(1))
    assert drawn_ms < 2000, f"the index page took {drawn_ms} ms to draw its first rows"
    print(f"10,000-tree index: {size} bytes of data, first rows drawn {drawn_ms} ms after navigation start")


def broken_links(site: Path) -> list[str]:
    """Every relative href/src of every page of `site` that names no file of the site."""
    broken = []
    for page in site.rglob("*.html"):
        for link in re.findall(r'(?:href|src)="([^"#]+)[^"]*"', page.read_text()):
            if "://" in link or link.startswith(("mailto:", "data:")):
                continue
            if not (page.parent / link).resolve().is_file():
                broken.append(f"{page.relative_to(site)} -> {link}")
    return broken


def test_every_relative_link_of_the_sites_resolves(sites):
    tmp, store = sites
    for folder in (tmp / "prefs", tmp / "eval"):
        assert broken_links(folder) == []
    # the site pbt eval run put in the store: its lineage links to the pairs and trees sites it wrote
    # beside it (prefs/ex/site/), by relative links that also work from a bucket served over HTTP
    stored = Path(store.root) / "results/ev/site"
    assert broken_links(stored) == []
    pbt = (stored / "index.html").read_text().split('id="lineage-pbt"', 1)[1]
    assert '<a href="../../../prefs/ex/site/index.html">ex/pbt</a>' in pbt
    assert '<a href="../../../prefs/ex/site/trees.html">tree job ex</a>' in pbt
    html = dom(stored / "index.html", tmp)
    assert 'href="../../../prefs/ex/site/trees.html"' in html


def test_site_into_an_s3_store_and_back(s3_env, tmp_path):
    """`pbt view prefs --to-store` against S3 (moto on loopback, through the minio SDK): the site's
    objects land under prefs/<id>/site/, and the folder downloaded from there is whole."""
    from pbt.orchestrate.preferences import extract_preferences
    from pbt.store import open_store
    from pbt.tree.io import read_trees, tree_to_json_line

    store = open_store()
    for tree in read_trees(ROOT / "examples/trees.reference.jsonl", fmt="reference"):
        store.put_text(f"trees/ex/{tree.id}.json", tree_to_json_line(tree) + "\n")
    extract_preferences(store, "ex", output_id="ex", seed=0)
    made = CliRunner().invoke(cli, ["view", "prefs", "ex", "--to-store", "--quiet"])
    assert made.exit_code == 0, made.output
    assert made.output.strip() == f"s3://{s3_env['bucket']}/prefs/ex/site/index.html"
    keys = set(store.list("prefs/ex/site/"))
    assert {
        "prefs/ex/site/index.html",
        "prefs/ex/site/trees.html",
        "prefs/ex/site/trees/index-data.js",
    } <= keys
    assert "prefs/ex/site/trees/ex_mona_lisa.html" in keys and "prefs/ex/site/assets/view.css" in keys
    local = store.get_dir("prefs/ex/site", tmp_path / "site")
    assert broken_links(local) == []
    assert 'data-roles="chosen"' in (local / "trees/ex_mona_lisa.html").read_text()
