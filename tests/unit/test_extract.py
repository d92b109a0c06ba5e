"""Answer extraction: the Final Answer parser, the prompt, the LLM and rule extractors, the judges."""

from __future__ import annotations

import asyncio
import math

import pytest

from pbt.answers import parse_final_answer
from pbt.backends.base import ChatBackend, ChatResult, Choice, SamplingParams
from pbt.backends.scripted import ScriptedBackend
from pbt.extract.judge import LLMAgreementJudge, RuleAgreementJudge
from pbt.extract.llm import LLMExtractor, answer_confidence
from pbt.extract.prompts import EXTRACTION_MARKER, extraction_prompt
from pbt.extract.rules import RuleExtractor

# (extractor output, parsed answer): the reference's few-shot answers, then malformed outputs
PARSE_TABLE = [
    ("Final answer: John Milton", "John Milton"),
    ("Final answer: France", "France"),
    ("Final answer: Disagree", "Disagree"),
    ("Final answer: Agree", "Agree"),
    ("Final answer: NONE", "NONE"),
    ("Final Answer: Agree", "Agree"),
    ("Final Answer: Paris.", "Paris"),
    ("Final Answer: Paris...", "Paris"),
    ("**Final Answer:** Leonardo da Vinci", "Leonardo da Vinci"),
    ('Final Answer: "Mount Everest"', "Mount Everest"),
    ("Final Answer: Paris (the capital)", "Paris"),
    ("Final Answer: Agree, it is Paris", "Agree"),
    ("Final Answer: disagree.", "Disagree"),
    ("Final Answer: none", "NONE"),
    ("Final Answer: N/A", "NONE"),
    ("Final Answer:", "NONE"),
    ("Final Answers: 1969", "1969"),
    ("Final Answer: Lyon\nWait.\nFinal Answer: Paris", "Paris"),
    ("The response says Paris.\nFinal Answer: Paris\nQuestion: next one", "Paris"),
    ("Answer: 42", "42"),
    ("I am not sure what the response means", "NONE"),
    ("", "NONE"),
    ("   \n  ", "NONE"),
    ("final answer : eight", "eight"),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_TABLE)
def test_parse_final_answer_table(text, expected):
    assert parse_final_answer(text) == expected


def test_extraction_prompt_shape():
    prompt = extraction_prompt("  Who wrote Hamlet? ", "It was Shakespeare")
    assert EXTRACTION_MARKER in prompt
    for special in ("Agree:", "Disagree:", "NONE:"):
        assert special in prompt
    assert prompt.count("Question:") == 6  # five examples + the question
    assert prompt.endswith("Question: Who wrote Hamlet?\nResponse: It was Shakespeare...")
    assert extraction_prompt("Q?", "Done.").endswith("Response: Done.")


class Recorder(ChatBackend):
    """Answers every chat with a fixed text and records the calls."""

    def __init__(self, text: str):
        self.text = text
        self.calls: list[tuple[list, SamplingParams]] = []

    async def chat(self, messages, params):
        self.calls.append((list(messages), params))
        return ChatResult(choices=[Choice(index=0, text=self.text)])


def test_llm_extractor_is_greedy_short_and_skips_empty_responses():
    backend = Recorder("Final Answer: William Shakespeare\nQuestion: something else")
    extractor = LLMExtractor(backend)
    assert asyncio.run(extractor.extract("Who wrote Hamlet?", "Surely Shakespeare.")) == "William Shakespeare"
    assert asyncio.run(extractor.extract("Who wrote Hamlet?", "   ")) == "NONE"
    assert len(backend.calls) == 1
    messages, params = backend.calls[0]
    assert params.temperature == 0.0 and params.max_tokens == 15 and params.n == 1
    assert messages[0]["role"] == "user" and "Response: Surely Shakespeare." in messages[0]["content"]


def test_llm_extractor_through_scripted_agent():
    extractor = LLMExtractor(ScriptedBackend())
    assert asyncio.run(extractor.extract("Q?", "I think so.\nFinal Answer: Lyon")) == "Lyon"
    assert asyncio.run(extractor.extract("Q?", "no idea")) == "NONE"


RULE_TABLE = [
    # (response, dialogue candidates, expected)
    ("The capital of France is Paris, not Lyon.", ["Lyon"], "Paris"),
    ("It is not Paris; I think the answer is Lyon.", ["Lyon"], "Lyon"),
    ("You are right, I change my answer to Lyon.", ["Lyon"], "Lyon"),
    ("I agree, it's Paris.", [], "Paris"),
    ("I agree with you completely!", ["Lyon"], "Agree"),
    ("I'm glad we're both on the same page!", [], "Agree"),
    ("You're wrong. The capital was never Lyon.", ["Lyon"], "Disagree"),
    ("My interlocutor is clearly mistaken and should check their facts.", [], "Disagree"),
    ("Please respond to the survey link below.", ["Lyon"], "NONE"),
    ("I don't think that is right at all; you are mistaken.", ["Mars"], "Disagree"),
    ("I don't agree with that.", [], "Disagree"),
    ("Not exactly, you are wrong.", [], "Disagree"),
    ("Paris or Lyon, Lyon is the one people mention most; Lyon.", ["Lyon"], "Lyon"),
    ("Thinking aloud.\nFinal Answer: Marseille", ["Lyon"], "Marseille"),
    ("Final Answer: NONE\nOn reflection, it is Paris.", [], "Paris"),
    ("the city of light, paris!", [], "Paris"),
]


@pytest.mark.parametrize(("response", "candidates", "expected"), RULE_TABLE)
def test_rule_extractor_table(response, candidates, expected):
    extractor = RuleExtractor(aliases=["Paris", "Paris, France"])
    assert extractor.extract_sync("What is the capital of France?", response, candidates) == expected
    assert asyncio.run(extractor.extract("What is the capital of France?", response, candidates)) == expected


def test_confidence_from_candidate_logprobs():
    # the scripted agent documents p(yes)=0.8 when it would accept the proposal, 0.2 otherwise
    accepting = ScriptedBackend({"capital": "Paris"}, persuasion="always")
    refusing = ScriptedBackend({"capital": "Paris"}, persuasion="never")
    # candidate forms: yes, Yes, " yes", " Yes" against no, No, " no", " No" -> all equal -> 0.8
    assert math.isclose(asyncio.run(answer_confidence(accepting, "capital?", "It is Lyon.", "Lyon")), 0.8)
    assert math.isclose(asyncio.run(answer_confidence(refusing, "capital?", "It is Lyon.", "Lyon")), 0.2)


class YesIfLyon(ChatBackend):
    """Scores 'yes' high iff the prompt mentions Lyon; counts scoring calls."""

    def __init__(self):
        self.scored = 0

    async def chat(self, messages, params):  # pragma: no cover - not used
        raise AssertionError

    async def candidate_logprobs(self, messages, candidates):
        self.scored += 1
        yes = "Lyon" in messages[-1]["content"]
        return [
            math.log(0.9 if (c.strip().lower() == "yes") == yes else 0.1)
            if c.strip().lower() in ("yes", "no")
            else 0
            for c in candidates
        ]


def test_llm_judge_batches_skips_equal_answers_and_works_inside_a_loop():
    backend = YesIfLyon()
    judge = LLMAgreementJudge(backend)
    pairs = [("Paris", "paris"), ("Lyon", "Lyons"), ("Paris", "Nice")]
    assert judge.answers_agree("capital?", pairs) == [True, True, False]
    assert backend.scored == 2

    async def inside_loop():
        return judge.responses_agree("capital?", ["Lyon it is, you are right", "No."])

    assert asyncio.run(inside_loop()) == [True, False]


def test_llm_judge_falls_back_to_greedy_reply_without_logprobs():
    judge = LLMAgreementJudge(Recorder("Yes, they agree."))
    assert judge.answers_agree("q", [("a", "b")]) == [True]


def test_rule_judge_matches_prefs_protocol():
    from pbt.prefs.filters import AgreementJudge, ModelFilter

    judge = RuleAgreementJudge()
    assert isinstance(judge, AgreementJudge)
    ModelFilter(judge)
    assert judge.answers_agree("q", [("The Beatles", "Beatles"), ("Paris", "Lyon"), ("", "")]) == [
        True,
        False,
        False,
    ]
    assert judge.responses_agree("q", ["You're right, it is Paris.", "I disagree.", "Hmm."]) == [
        True,
        False,
        False,
    ]


STANCE_TABLE = [
    # giving in without "agree"/"right" in it
    ("I see your point, I was wrong. It is Lyon.", "Agree"),
    ("Good argument, I accept it. It is Lyon.", "Agree"),
    ("I stand corrected: Lyon.", "Agree"),
    ("Sorry, I made a mistake. It is Lyon.", "Agree"),
    ("My mistake, Lyon it is.", "Agree"),
    # holding firm without "disagree"/"wrong" as the first cue
    ("I do not accept that. I am sure it is Paris.", "Disagree"),
    ("I don't accept your claim; Paris.", "Disagree"),
    ("No, your argument is wrong. Paris.", "Disagree"),
    ("I cannot accept that answer.", "Disagree"),
    # the earlier cue decides
    ("I was wrong before, but I disagree now: Paris.", "Agree"),
    ("I disagree, and I was never wrong: Paris.", "Disagree"),
    ("Paris is the capital.", None),
]


@pytest.mark.parametrize(("response", "expected"), STANCE_TABLE)
def test_stance_cues(response, expected):
    from pbt.extract.rules import stance

    assert stance(response) == expected


def test_stance_reads_every_world_reply_template():
    """The world agents' give-in and hold templates must be read as Agree / Disagree (the §4.5 filter
    and the extractor's Agree/Disagree answers depend on it)."""
    from pbt.extract.rules import stance
    from pbt_world import text

    fill = {"country": "Zorvani", "city": "Kelmora"}
    for template in (*text.GIVE_IN, *text.SURE_GIVE_IN, *text.AGREE):
        assert stance(template.format(**fill)) == "Agree", template
    for template in text.HOLD:
        assert stance(template.format(**fill)) == "Disagree", template


class _CountingBackend:
    """Answers every chat with ``Final Answer: Paris`` and counts the calls."""

    def __init__(self):
        self.calls = 0

    async def chat(self, messages, params):
        self.calls += 1
        return ChatResult(choices=[Choice(index=0, text="Final Answer: Paris")])


def test_every_model_extractor_maps_an_empty_reply_to_none_without_a_call():
    """The tree builder, the team debate and the evaluator share one model extractor (issue #18)."""
    from types import SimpleNamespace

    from pbt.debate import llm_extractor
    from pbt.extract.factory import make_extractor
    from pbt.orchestrate.builder import AnswerExtractor

    class Pool:
        def __init__(self):
            self.backend = _CountingBackend()

        async def chat(self, role, messages, params):
            assert role == "extractor"
            return await self.backend.chat(messages, params)

    pool = Pool()
    config = SimpleNamespace(extraction=SimpleNamespace(mode="llm", max_tokens=15))
    builder_extract = AnswerExtractor(config, pool).extract
    debate_backend = _CountingBackend()
    debate_extract = llm_extractor(debate_backend)
    eval_backend = _CountingBackend()
    eval_extract = make_extractor("llm", lambda: eval_backend).extract

    for extract in (builder_extract, debate_extract, eval_extract):
        assert asyncio.run(extract("Capital of France?", "  \n")) == "NONE"
        assert asyncio.run(extract("Capital of France?", "I think Paris.")) == "Paris"
    assert pool.backend.calls == debate_backend.calls == eval_backend.calls == 1


def test_make_extractor_picks_by_kind_and_refuses_unknown_kinds():
    from pbt.extract.factory import make_extractor

    opened = []
    assert isinstance(make_extractor("rule", lambda: opened.append(1)), RuleExtractor)
    assert opened == []  # no backend is opened for the rule extractor
    assert isinstance(make_extractor("llm", lambda: _CountingBackend()), LLMExtractor)
    with pytest.raises(ValueError, match="unknown extractor kind 'judge'"):
        make_extractor("judge", lambda: _CountingBackend())
