"""The model-based filtering hook (§4.5) with a scripted agreement judge."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import prefs_trees as T

from pbt.prefs import AgreementJudge, ModelFilter, analyze_tree, build_preferences, resolve_disagree
from pbt.tree.reference import tree_from_reference


class ScriptedJudge:
    """Answers agree iff listed; a response agrees iff it contains one of the given markers."""

    def __init__(
        self, agreeing_answers: set[frozenset[str]] = frozenset(), agreeing_markers: Sequence[str] = ()
    ):
        self.agreeing_answers = agreeing_answers
        self.agreeing_markers = agreeing_markers
        self.calls: list[tuple[str, int]] = []

    def answers_agree(self, question: str, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        self.calls.append(("answers", len(pairs)))
        return [frozenset((a, b)) in self.agreeing_answers for a, b in pairs]

    def responses_agree(self, question: str, responses: Sequence[str]) -> list[bool]:
        self.calls.append(("responses", len(responses)))
        return [any(m in r for m in self.agreeing_markers) for r in responses]


def test_scripted_judge_satisfies_the_protocol():
    assert isinstance(ScriptedJudge(), AgreementJudge)


def test_confirm_keeps_resist_pairs_only_when_chosen_disagrees_and_rejected_agrees():
    tree = tree_from_reference(copy.deepcopy(T.RESIST))
    # rejected responses 8 and 10 "agree"; chosen 7 and 9 do not -> both resist pairs survive
    judge = ScriptedJudge(agreeing_markers=["turn 8 ", "turn 10 "])
    kept = {(p.chosen, p.rejected, p.code) for p in analyze_tree(tree, ModelFilter(judge)).pairs}
    assert kept == {("7", "8", "resist"), ("9", "10", "resist")}
    # now chosen 7 also "agrees": that pair is dropped
    judge = ScriptedJudge(agreeing_markers=["turn 7 ", "turn 8 ", "turn 10 "])
    kept = {(p.chosen, p.rejected) for p in analyze_tree(tree, ModelFilter(judge)).pairs}
    assert kept == {("9", "10")}


def test_confirm_accept_pairs_and_drops_unlabelled():
    tree = tree_from_reference(copy.deepcopy(T.LEVELS))
    judge = ScriptedJudge(agreeing_markers=["turn 12 "])  # chosen agrees, rejected 11 does not
    assert {(p.chosen, p.rejected, p.code) for p in analyze_tree(tree, ModelFilter(judge)).pairs} == {
        ("12", "11", "accept")
    }


def test_reannotate_unifies_agreeing_answers_towards_the_correct_one():
    tree = tree_from_reference(
        T.ref_tree(
            "re",
            ["paris"],
            [
                (1, -1, 0, "London", None),
                (2, 1, 1, "London", "Paris, France"),  # not listed as agreeing
                (3, 1, 1, "Paris", "Rome"),
                (4, 1, 1, "Lyon", "Nice"),
            ],
        )
    )
    judge = ScriptedJudge(agreeing_answers={frozenset(("Paris", "Rome")), frozenset(("Lyon", "Nice"))})
    out = ModelFilter(judge).reannotate(tree, resolve_disagree(tree))
    assert out["2"] == ("London", "Paris, France")  # not judged as agreeing: unchanged
    assert out["3"] == ("Paris", "Paris")  # the incorrect one takes the correct one
    assert out["4"] == ("Nice", "Nice")  # neither correct: A takes B's (the reference's order)
    assert out["1"] == ("London", None)  # a missing answer is never judged
    assert judge.calls == [("answers", 3)]  # one batched call per tree


def test_filter_in_build_preferences():
    trees = [tree_from_reference(copy.deepcopy(r)) for r in (T.RESIST, T.ACCEPT)]
    # node texts are "turn <id> ..." in both trees; these turns count as agreeing responses
    judge = ScriptedJudge(agreeing_markers=["turn 8 ", "turn 9 ", "turn 10 ", "turn 12 "])
    result = build_preferences(trees, "labelled", pair_filter=ModelFilter(judge))
    kept = {(r["tree_id"], r["chosen_node"], r["rejected_node"], r["code"]) for r in result.records}
    # t-resist: 7>8 kept (7 disagrees, 8 agrees); 9>10 dropped (chosen 9 agrees)
    # t-accept: 8>9 dropped (rejected 9 agrees); 10>11 and 12>13 kept (chosen agrees, rejected not)
    assert kept == {
        ("t-resist", "7", "8", "resist"),
        ("t-accept", "10", "11", "accept"),
        ("t-accept", "12", "13", "accept"),
    }


def test_make_pair_filter_by_name():
    import pytest

    from pbt.errors import ValidationError
    from pbt.extract.judge import RuleAgreementJudge
    from pbt.prefs import PAIR_FILTERS, make_pair_filter

    assert PAIR_FILTERS == ("none", "rules", "judge")
    assert (
        make_pair_filter(None) is None and make_pair_filter("") is None and make_pair_filter("none") is None
    )
    rules = make_pair_filter("rules")
    assert isinstance(rules, ModelFilter) and isinstance(rules.judge, RuleAgreementJudge)
    with pytest.raises(ValidationError) as info:
        make_pair_filter("llm", field="pair_filter")
    assert info.value.field == "pair_filter" and "'llm'" in str(info.value)
    with pytest.raises(ValidationError) as info:  # the judge filter needs a judge agent
        make_pair_filter("judge")
    assert info.value.field == "judge"


def test_several_modes_analyse_each_tree_once():
    from pbt.prefs import build_preferences_by_mode

    trees = [tree_from_reference(copy.deepcopy(r)) for r in (T.RESIST, T.ACCEPT, T.LEVELS)]
    markers = ["turn 8 ", "turn 10 ", "turn 12 "]
    judge = ScriptedJudge(agreeing_markers=markers)
    modes = ["accept", "resist", "pbt", "all"]
    together = build_preferences_by_mode(trees, modes, seed=3, pair_filter=ModelFilter(judge))
    single = ScriptedJudge(agreeing_markers=markers)
    build_preferences(trees, "all", seed=3, pair_filter=ModelFilter(single))
    assert single.calls and judge.calls == single.calls  # the judge's work of one mode, not four
    for mode in modes:
        alone = build_preferences(
            trees, mode, seed=3, pair_filter=ModelFilter(ScriptedJudge(agreeing_markers=markers))
        )
        assert together[mode].records == alone.records and together[mode].counts() == alone.counts()
    assert together["all"].records and together["resist"].records
