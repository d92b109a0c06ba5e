"""The §4.5 filter with a model judge (``judge``), and the dev/test splits filtered by default."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import prefs_trees as T
import pytest
from click.testing import CliRunner

from pbt.backends.base import ChatBackend, ChatResult, Choice, Usage
from pbt.cli.main import cli
from pbt.extract.judge import LLMAgreementJudge
from pbt.prefs import ModelFilter, analyze_tree, build_preferences, make_pair_filter
from pbt.prefs.dataset import manifest_path
from pbt.prefs.filters import resolve_eval_filter
from pbt.tree.reference import tree_from_reference


class MarkerJudge(ChatBackend):
    """A judge model: "yes" iff the quoted response holds one of `markers` (no log-probabilities)."""

    def __init__(self, markers=()):
        self.markers = tuple(markers)
        self.prompts: list[str] = []

    async def chat(self, messages, params):
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        quoted = prompt.rsplit("Response:", 1)[-1] if "Response:" in prompt else ""
        text = "yes" if any(m in quoted for m in self.markers) else "no"
        return ChatResult(choices=[Choice(index=0, text=text)], usage=Usage(), model="judge")

    async def candidate_logprobs(self, messages, candidates):
        raise NotImplementedError


def test_judge_filter_asks_the_judge_model():
    """Rejected responses 8 and 10 agree (the judge says yes), chosen 7 and 9 do not: both resist
    pairs kept; when 7 agrees too, its pair goes."""
    tree = tree_from_reference(copy.deepcopy(T.RESIST))
    judge = MarkerJudge(["turn 8 ", "turn 10 "])
    flt = make_pair_filter("judge", judge=judge)
    assert isinstance(flt, ModelFilter) and isinstance(flt.judge, LLMAgreementJudge)
    assert {(p.chosen, p.rejected, p.code) for p in analyze_tree(tree, flt).pairs} == {
        ("7", "8", "resist"),
        ("9", "10", "resist"),
    }
    assert any("Does the response agree?" in p for p in judge.prompts)
    strict = make_pair_filter("judge", judge=MarkerJudge(["turn 7 ", "turn 8 ", "turn 10 "]))
    assert {(p.chosen, p.rejected) for p in analyze_tree(tree, strict).pairs} == {("9", "10")}


@pytest.mark.parametrize(
    "train,eval_name,has_judge,expected",
    [
        ("none", None, False, "rules"),  # dev/test filtered by default, offline
        ("none", "auto", True, "judge"),  # ... by the judge when there is one
        ("judge", None, True, "judge"),  # the train filter when it filters
        ("rules", "auto", True, "rules"),
        ("rules", "none", False, "none"),  # unfiltered only when asked
    ],
)
def test_eval_filter_defaults(train, eval_name, has_judge, expected):
    assert resolve_eval_filter(train, eval_name, has_judge=has_judge) == expected


def test_dev_and_test_splits_have_their_own_filter():
    trees = [tree_from_reference(copy.deepcopy(r)) for r in (T.RESIST, T.ACCEPT, T.LEVELS)]
    drop_all = make_pair_filter("judge", judge=MarkerJudge())  # nothing agrees: every labelled pair fails
    plain = build_preferences(trees, "labelled", fractions=(1.0, 0.0, 0.0))
    assert plain.records
    # every tree in train: the eval filter does not apply
    train = build_preferences(trees, "labelled", fractions=(1.0, 0.0, 0.0), eval_filter=drop_all)
    assert len(train.records) == len(plain.records)
    # every tree in test: the eval filter applies, the (absent) train filter does not matter
    test = build_preferences(trees, "labelled", fractions=(0.0, 0.0, 1.0), eval_filter=drop_all)
    assert test.records == []
    # the default "same": the train filter everywhere
    same = build_preferences(trees, "labelled", fractions=(0.0, 0.0, 1.0), pair_filter=drop_all)
    assert same.records == []


@pytest.fixture()
def ref_file(tmp_path: Path) -> Path:
    path = tmp_path / "trees.reference.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in (T.RESIST, T.ACCEPT, T.LEVELS)))
    return path


def test_cli_judge_filter(ref_file: Path, tmp_path: Path):
    base = ["prefs", "--trees", str(ref_file), "--format", "reference", "--mode", "labelled"]
    missing = CliRunner().invoke(cli, [*base, "--filter", "judge", "--out", str(tmp_path / "x.jsonl")])
    assert missing.exit_code == 2 and "--judge-endpoint" in missing.output
    # the scripted judge (pbt.backends.make_backend's scripted:) never accepts: every labelled pair
    # fails the check that its chosen or rejected response agrees
    out = tmp_path / "judged.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            *base,
            "--filter",
            "judge",
            "--judge-endpoint",
            "scripted:",
            "--judge-model",
            "j",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_text() == ""
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["filter"] == "judge"
    assert manifest["settings"]["eval_filter"] == "judge"
    assert manifest["settings"]["judge"] == {"endpoint": "scripted:", "model": "j"}
    # no filter asked: dev and test are still filtered, by rules
    plain = tmp_path / "plain.jsonl"
    assert CliRunner().invoke(cli, [*base, "--out", str(plain)]).exit_code == 0
    settings = json.loads(manifest_path(plain).read_text())["settings"]
    assert settings["eval_filter"] == "rules" and settings["judge"] is None
