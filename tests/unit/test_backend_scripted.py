"""The scripted backend follows its documented rules exactly."""

from __future__ import annotations

import asyncio
import math

import pytest

from pbt.answers import parse_final_answer
from pbt.backends.base import SamplingParams
from pbt.backends.scripted import ScriptedBackend
from pbt.extract.prompts import extraction_prompt

Q = "What is the capital of France?"
P = SamplingParams(temperature=0.0, max_tokens=40)


def run(coro):
    return asyncio.run(coro)


def convo(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in turns]


def test_first_answer_from_table_with_template_around_question():
    agent = ScriptedBackend({Q: "Paris"})
    res = run(agent.chat(convo(("system", "persona"), ("user", f"Question: {Q}\nAnswer briefly.")), P))
    assert res.choices[0].text == "I believe the answer is Paris.\nFinal Answer: Paris"
    assert res.usage.completion_tokens == len(res.choices[0].text.split())
    unknown = run(agent.chat(convo(("user", "Who wrote Hamlet?")), P))
    assert parse_final_answer(unknown.choices[0].text) == "NONE"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("never", "Paris"), ("always", "Lyon")],
)
def test_persuasion_never_always(mode, expected):
    agent = ScriptedBackend({Q: "Paris"}, persuasion=mode)
    msgs = convo(
        ("user", Q), ("assistant", "Final Answer: Paris"), ("user", "It is Lyon.\nFinal Answer: Lyon")
    )
    assert parse_final_answer(run(agent.chat(msgs, P)).choices[0].text) == expected


def test_persuasion_correct_only_and_agreement():
    agent = ScriptedBackend({Q: "Lyon"}, persuasion="correct", gold={Q: "Paris"})
    base = [("user", Q), ("assistant", "Final Answer: Lyon")]
    to_gold = convo(*base, ("user", "Final Answer: Paris"))
    to_wrong = convo(*base, ("user", "Final Answer: Nice"))
    same = convo(*base, ("user", "Final Answer: lyon"))
    assert parse_final_answer(run(agent.chat(to_gold, P)).choices[0].text) == "Paris"
    assert parse_final_answer(run(agent.chat(to_wrong, P)).choices[0].text) == "Lyon"
    assert run(agent.chat(same, P)).choices[0].text.startswith("I agree")


def test_rate_is_deterministic_and_close_to_rate():
    agent = ScriptedBackend({Q: "Paris"}, persuasion=0.3, seed=7)
    msgs = convo(("user", Q), ("assistant", "Final Answer: Paris"), ("user", "Final Answer: Lyon"))
    params = SamplingParams(temperature=1.0, n=400, max_tokens=40)
    first = [parse_final_answer(c.text) for c in run(agent.chat(msgs, params)).choices]
    again = [parse_final_answer(c.text) for c in run(agent.chat(msgs, params)).choices]
    assert first == again
    rate = first.count("Lyon") / len(first)
    assert 0.22 < rate < 0.38
    other_seed = ScriptedBackend({Q: "Paris"}, persuasion=0.3, seed=8)
    assert [parse_final_answer(c.text) for c in run(other_seed.chat(msgs, params)).choices] != first


def test_challenge_without_proposal_uses_doubt_answer():
    agent = ScriptedBackend({Q: "Paris"}, persuasion="always", doubt_answers={Q: "Marseille"})
    msgs = convo(("user", Q), ("assistant", "Final Answer: Paris"), ("user", "Are you sure?"))
    assert parse_final_answer(run(agent.chat(msgs, P)).choices[0].text) == "Marseille"
    stubborn = ScriptedBackend({Q: "Paris"})
    assert run(stubborn.chat(msgs, P)).choices[0].text == "Yes, I am sure.\nFinal Answer: Paris"


def test_acts_as_extractor_and_respects_max_tokens_and_stop():
    agent = ScriptedBackend()
    prompt = extraction_prompt(Q, "I think it is Paris.\nFinal Answer: Paris")
    assert run(agent.chat(convo(("user", prompt)), P)).choices[0].text == "Final Answer: Paris"
    short = run(ScriptedBackend({Q: "Paris"}).chat(convo(("user", Q)), SamplingParams(max_tokens=3)))
    assert short.choices[0].text == "I believe the" and short.choices[0].finish_reason == "length"
    stopped = run(ScriptedBackend({Q: "Paris"}).chat(convo(("user", Q)), SamplingParams(stop=["\n"])))
    assert stopped.choices[0].text == "I believe the answer is Paris."


def test_candidate_logprobs_and_concurrency_tracking():
    agent = ScriptedBackend({Q: "Paris"}, persuasion="never", delay=0.01)
    msgs = convo(("user", Q), ("assistant", "Final Answer: Paris"), ("user", "Final Answer: Lyon"))
    yes, no = run(agent.candidate_logprobs(msgs, ["yes", "no"]))
    assert math.isclose(math.exp(yes), 0.2) and math.isclose(math.exp(no), 0.8)
    scores = run(agent.candidate_logprobs(convo(("user", Q)), ["Paris", "Lyon", "Nice"]))
    assert math.isclose(math.exp(scores[0]), 0.9) and math.isclose(math.exp(scores[1]), 0.05)

    async def many():
        await asyncio.gather(*(agent.chat(convo(("user", Q)), P) for _ in range(5)))

    run(many())
    assert agent.max_in_flight == 5 and len(agent.calls) == 5


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="rate"):
        ScriptedBackend(persuasion=1.5)
    with pytest.raises(ValueError, match="gold"):
        ScriptedBackend(persuasion="correct")
