"""The gates, the verdict and `pbt promote` on hand-made evaluation summaries in the evaluator's
format (MetricValue dicts from pbt.evaluate.stats.summarize, grouped as the suites group them)."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.errors import ConflictError
from pbt.evaluate.stats import ratio, summarize
from pbt.pipeline.gate import make_verdict, render_report
from pbt.pipeline.promote import apply_promotion, promote
from pbt.pipeline.spec import GatesSpec


def metric(correct: list[int], seeds=(1, 2)) -> dict:
    rows = [{"seed": s, "item_id": f"q{i}", "c": c, "one": 1} for s in seeds for i, c in enumerate(correct)]
    return summarize(rows, ratio("c", "one"), columns=["c", "one"], samples=200).to_dict()


def summary(cand_bal, prom_bal, cand_mis=None, prom_mis=None, *, errors=0, state="succeeded") -> dict:
    suites = {
        "balanced": {
            "suite": "balanced",
            "n_examples": 80,
            "n_errors": errors,
            "errors": [],
            "metrics": {"cand": {"overall": metric(cand_bal)}, "promoted": {"overall": metric(prom_bal)}},
        }
    }
    if cand_mis is not None:
        suites["misinformation"] = {
            "suite": "misinformation",
            "n_examples": 40,
            "n_errors": 0,
            "errors": [],
            "metrics": {
                "cand/Avg": {"misinformation_rate_avg": metric(cand_mis)},
                "promoted/Avg": {"misinformation_rate_avg": metric(prom_mis)},
            },
        }
    return {
        "eval_id": "e1",
        "state": state,
        "seeds": [1, 2],
        "results_uri": "file:///s/results/e1",
        "suites": suites,
    }


GOOD = [1] * 18 + [0] * 2
BAD = [1] * 8 + [0] * 12


def verdict(doc, gates=None):
    return make_verdict(
        "run-1",
        doc,
        candidate={"name": "cand", "adapter": "training/run-1-dpo/adapter"},
        promoted={"name": "promoted", "adapter": "training/old/adapter"},
        gates=gates or GatesSpec(),
        promotion={
            "values_file": "k8s/environments/production/values.yaml",
            "role": "b",
            "adapter_name": "dpo-run-1",
            "adapter_path": "training/run-1-dpo/adapter",
        },
    )


def test_a_better_candidate_passes_every_gate_with_its_numbers():
    v = verdict(summary(GOOD, BAD, [0] * 10, [0] * 9 + [1]))
    assert v["passed"] and v["failed_gates"] == []
    bal = next(g for g in v["gates"] if g["name"] == "balanced_accuracy")
    assert bal["values"]["candidate"]["mean"] == 0.9 and bal["values"]["promoted"]["mean"] == 0.4
    assert bal["values"]["candidate"]["ci_low"] is not None
    report = render_report(v)
    assert "PASSED" in report and "| balanced_interval | pass |" in report


@pytest.mark.parametrize(
    "doc, gates, failing",
    [
        (summary(BAD, GOOD), None, ["balanced_accuracy", "balanced_interval"]),
        # better mean, but within noise of the promoted one: the interval gate alone fails
        (summary([1] * 11 + [0] * 9, [1] * 10 + [0] * 10), None, ["balanced_interval"]),
        (summary(GOOD, BAD), GatesSpec(balanced_margin=0.6), ["balanced_accuracy"]),
        (summary(GOOD, BAD, [1] * 5 + [0] * 5, [0] * 10), None, ["misinformation_rate"]),
        (summary(GOOD, BAD, errors=2), None, ["suite_errors"]),
        (summary(GOOD, BAD, state="failed"), None, ["evaluation_succeeded"]),
    ],
)
def test_each_gate_names_itself_when_it_fails(doc, gates, failing):
    v = verdict(doc, gates)
    assert not v["passed"] and v["failed_gates"] == failing
    assert "FAILED" in render_report(v)


def test_misinformation_tolerance_and_missing_suite():
    v = verdict(summary(GOOD, BAD, [1] + [0] * 9, [0] * 10), GatesSpec(misinformation_tolerance=0.15))
    assert v["passed"]
    v = verdict(summary(GOOD, BAD))
    assert next(g for g in v["gates"] if g["name"] == "misinformation_rate")["passed"] is None and v["passed"]


VALUES = """# production
agents:
  roles:
    a:
      enabled: true
      model: models/x
    b:
      enabled: true
      model: training/sft/merged
      # the promoted adapter
      adapters:
        - {name: dpo-old, path: training/old/adapter}
      servedAdapter: dpo-old
      gpus: 1
    extractor:
      adapters: []
metrics:
  enabled: true
"""


def test_apply_promotion_keeps_comments_and_changes_only_role_b():
    new = apply_promotion(VALUES, "b", "dpo-run-1", "training/run-1-dpo/adapter")
    data, old = yaml.safe_load(new), yaml.safe_load(VALUES)
    assert data["agents"]["roles"]["b"]["servedAdapter"] == "dpo-run-1"
    assert data["agents"]["roles"]["b"]["adapters"][-1] == {
        "name": "dpo-run-1",
        "path": "training/run-1-dpo/adapter",
    }
    assert data["agents"]["roles"]["a"] == old["agents"]["roles"]["a"] and data["metrics"] == old["metrics"]
    assert "# the promoted adapter" in new and new.startswith("# production")
    # also where the role had no adapters yet
    new = apply_promotion(VALUES, "extractor", "x1", "training/x/adapter")
    assert yaml.safe_load(new)["agents"]["roles"]["extractor"]["servedAdapter"] == "x1"


def test_promote_renders_the_diff_and_refuses_a_failed_verdict(tmp_path):
    (tmp_path / "k8s/environments/production").mkdir(parents=True)
    values = tmp_path / "k8s/environments/production/values.yaml"
    values.write_text(VALUES)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(verdict(summary(GOOD, BAD))))
    result = promote(str(good), root=tmp_path)
    assert "+      servedAdapter: dpo-run-1" in result.diff and "-      servedAdapter: dpo-old" in result.diff
    assert "a/k8s/environments/production/values.yaml" in result.diff
    assert values.read_text() == VALUES  # printing only, unless --write
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(verdict(summary(BAD, GOOD))))
    with pytest.raises(ConflictError, match="failing gates: balanced_accuracy, balanced_interval"):
        promote(str(bad), root=tmp_path)
    runner = CliRunner()
    out = runner.invoke(cli, ["promote", str(good), "--values-file", str(values)])
    assert out.exit_code == 0 and "+      servedAdapter: dpo-run-1" in out.output
    out = runner.invoke(cli, ["promote", str(bad), "--values-file", str(values)])
    assert out.exit_code == 1 and "failing gates: balanced_accuracy" in out.output
    out = runner.invoke(cli, ["promote", str(good), "--values-file", str(values), "--push"])
    assert out.exit_code == 1 and "Git credential" in out.output


def test_promote_works_on_the_real_production_values():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "k8s/environments/production/values.yaml").read_text()
    new = apply_promotion(text, "b", "dpo-run-1", "training/run-1-dpo/adapter")
    b = yaml.safe_load(new)["agents"]["roles"]["b"]
    assert b["servedAdapter"] == "dpo-run-1" and len(b["adapters"]) == 2


def test_promote_push_commits_on_a_branch_and_pushes(tmp_path, monkeypatch):
    import subprocess

    def git(*args, cwd):
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)

    remote, repo = tmp_path / "remote.git", tmp_path / "repo"
    git("init", "--bare", "-q", str(remote), cwd=tmp_path)
    git("init", "-q", str(repo), cwd=tmp_path)
    values = repo / "k8s/environments/production/values.yaml"
    values.parent.mkdir(parents=True)
    values.write_text(VALUES)
    for args in (
        ("config", "user.name", "t"),
        ("config", "user.email", "t@e"),
        ("add", "."),
        ("commit", "-qm", "base"),
    ):
        git(*args, cwd=repo)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(verdict(summary(GOOD, BAD))))
    monkeypatch.setenv("PBT_GIT_REMOTE", str(remote))
    result = promote(str(good), values_file=values, push=True)
    assert result.branch == "promote/run-1"
    shown = subprocess.run(
        ["git", "show", "promote/run-1:k8s/environments/production/values.yaml"],
        cwd=remote,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "servedAdapter: dpo-run-1" in shown
