"""Every object-store key shape (pbt.store.layout): a contract with stores already written."""

from __future__ import annotations

import pytest

from pbt.errors import ValidationError
from pbt.store import layout as L


def test_tree_keys():
    assert L.trees_prefix("job-1") == "trees/job-1/"
    assert L.tree_key("job-1", "q7-r2") == "trees/job-1/q7-r2.json"
    assert L.shard_manifests_prefix("job-1") == "trees/job-1/_manifests/"
    assert L.shard_manifest_key("job-1", 0, 3) == "trees/job-1/_manifests/shard-0-of-3.json"
    assert L.trees_site_prefix("job-1") == "trees/job-1/_site"
    for bad in ("", "../x", "a/b", "-x", "x" * 129):
        with pytest.raises(ValidationError, match="job id"):
            L.tree_key(bad, "q")


def test_pair_keys():
    assert L.prefs_prefix("p1") == "prefs/p1"
    assert L.pairs_key("p1", "pbt") == "prefs/p1/pbt.jsonl"
    assert L.pairs_manifest_key("prefs/p1/pbt.jsonl") == "prefs/p1/pbt.manifest.json"
    assert L.pairs_manifest_key("pairs.jsonl") == "pairs.manifest.json"
    assert L.pairs_manifest_name("pairs") == "pairs.manifest.json"
    assert L.prefs_manifest_key("p1") == "prefs/p1/manifest.json"
    assert L.prefs_site_prefix("p1") == "prefs/p1/site"


def test_result_keys():
    assert L.eval_prefix("e1") == "results/e1"
    assert L.config_key("e1") == "results/e1/config.json"
    assert L.examples_key("e1", "balanced") == "results/e1/balanced/examples.jsonl"
    assert L.suite_summary_key("e1", "balanced") == "results/e1/balanced/summary.json"
    assert L.summary_key("e1") == "results/e1/summary.json"
    assert L.report_key("e1") == "results/e1/report.md"
    assert L.figure_key("e1") == "results/e1/team_debate/team_accuracy_by_order.png"
    assert L.results_site_prefix("e1") == "results/e1/site"


def test_training_pipeline_promotion_and_demo_keys():
    assert L.training_prefix("dpo-pbt-seed1") == "training/dpo-pbt-seed1"
    assert L.training_prefix("r", "/runs/") == "runs/r"
    assert L.training_manifest_key("r") == "training/r/manifest.json"
    assert L.pipeline_spec_key("r1") == "pipelines/r1/spec.yaml"
    assert L.pipeline_step_key("r1", "train") == "pipelines/r1/steps/train.json"
    assert L.verdict_key("r1") == "promotions/r1/verdict.json"
    assert L.verdict_report_key("r1") == "promotions/r1/report.md"
    assert L.proposal_key("r1") == "promotions/r1/proposal.json"
    assert L.proposal_values_key("r1") == "promotions/r1/values.yaml"
    assert L.demo_prefix("d") == "demo/d"
    assert L.demo_key("d", "report.json") == "demo/d/report.json"
    assert L.demo_seed_key("d", 0, "balanced-hedged.jsonl") == "demo/d/seed0/balanced-hedged.jsonl"


def test_no_key_is_built_outside_the_layout():
    """The key roots appear in f-strings only in the layout module."""
    import re
    from pathlib import Path

    root = Path(L.__file__).resolve().parents[1]
    pattern = re.compile(r"""f["'](trees|prefs|results|training|pipelines|promotions|demo)/\{""")
    found = [
        f"{p.relative_to(root)}:{n}"
        for p in root.rglob("*.py")
        if p != Path(L.__file__).resolve() and "v1" not in p.parts
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert found == []
