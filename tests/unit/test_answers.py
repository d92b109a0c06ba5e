"""Answer scoring: the evaluation normalizer and the reference's preference rule (§3)."""

from __future__ import annotations

import Levenshtein
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbt.answers import (
    is_agree,
    is_correct_eval,
    is_disagree,
    levenshtein_ratio,
    merged_answers,
    node_agrees,
    normalize_answer,
    score_answers,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Beatles", "beatles"),
        ("  An   apple a day ", "apple day"),
        ("Rock-and_roll!", "rock and roll"),
        ("‘Quoted’ `text´", "quoted text"),
        ("theatre", "theatre"),  # articles only as whole words
        ("", ""),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_is_correct_eval():
    aliases = ["The Beatles", "Beatles, The"]
    assert is_correct_eval("beatles", aliases)
    assert is_correct_eval("THE BEATLES.", aliases)
    assert not is_correct_eval("the beatle", aliases)
    assert not is_correct_eval(None, aliases)
    assert not is_correct_eval("the", ["a"])  # both normalize to "": never correct


@given(st.text(max_size=30), st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_rapidfuzz_ratio_equals_python_levenshtein(a, b):
    assert levenshtein_ratio(a, b) == pytest.approx(Levenshtein.ratio(a, b), abs=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "ratio"),
    [("rivera", "diego rivera", 12 / 18), ("milton", "john milton", 12 / 17), ("", "", 1.0), ("ab", "", 0.0)],
)
def test_ratio_values(a, b, ratio):
    assert levenshtein_ratio(a, b) == pytest.approx(ratio)
    assert Levenshtein.ratio(a, b) == pytest.approx(ratio)


def test_tokens():
    assert is_agree("Agree") and is_agree(" agree ") and not is_agree("Agreed") and not is_agree(None)
    assert is_disagree("Disagree") and is_disagree("DISAGREE") and not is_disagree(" Disagree")


# (answer of A, answer of B), aliases -> (A correct, B correct) or None; worked out by hand
SCORING = [
    (("Paris", "paris "), ["paris"], (True, True)),  # lowercase + strip
    (("Paris", None), ["paris"], None),  # missing answer: unscorable
    ((None, None), ["paris"], None),
    (
        ("NONE", "Paris"),
        ["paris", "none"],
        (True, True),
    ),  # NONE is a plain answer (only gold makes it correct)
    (("NONE", "Paris"), ["paris"], (False, True)),
    (("Agree", "Paris"), ["paris"], (True, True)),  # A's agree takes B's answer
    (("London", "agree"), ["paris"], (False, False)),  # B's agree takes A's answer
    (("Agree", "Agree"), ["paris"], (False, False)),
    # substring + ratio > .5: B (the reference's first slot) takes A's value
    (("Diego Rivera", "Rivera"), ["diego rivera"], (True, True)),
    (("Rivera", "Diego Rivera"), ["diego rivera"], (False, False)),  # the merge works against B here
    # substring but ratio <= .5: no merge
    (("Rivera", "Rivera Museum of Modern Art"), ["rivera museum of modern art"], (False, True)),
    # not a substring: no merge even when similar
    (("Milton", "Mitlon"), ["mitlon"], (False, True)),
    # ratio exactly 0.5 is not > 0.5: "a" in "abc" has ratio 2/4
    (("abc", "a"), ["abc"], (True, False)),
    (("Sir Paul McCartney", "Paul McCartney"), ["paul mccartney"], (False, False)),  # ratio 28/32
    (("ab", "abc"), ["ab"], (True, True)),  # ratio 4/5 > .5: B takes "ab"
]


@pytest.mark.parametrize(("answers", "aliases", "expected"), SCORING)
def test_score_answers(answers, aliases, expected):
    assert score_answers(answers, aliases) == expected


def test_aliases_are_compared_lowercased():
    assert score_answers(("Paris", "x"), ["Paris"]) == (True, False)


def test_merged_answers():
    assert merged_answers(("Diego Rivera", "rivera")) == ("diego rivera", "diego rivera")
    assert merged_answers(("x", None)) is None


@pytest.mark.parametrize(
    ("answers", "agrees"),
    [
        (("Paris", "Paris"), True),
        (("Paris", "paris"), False),  # case-sensitive
        ((None, None), False),
        (("NONE", "NONE"), False),
        (("Agree", "x"), True),
        (("x", "Agree"), True),
        (("x", "agree"), False),  # the stopping rule compares the exact token
        (("x", None), False),
    ],
)
def test_node_agrees(answers, agrees):
    assert node_agrees(answers) is agrees
