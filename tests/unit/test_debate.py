"""Team debate (pbt.debate) with scripted agents: rounds, order, stopping, answer resolution, extraction."""

from __future__ import annotations

import asyncio

import pytest

from pbt.backends.scripted import ScriptedBackend
from pbt.debate import DebateAgent, answers_agree, llm_extractor, resolve_answer, rules_extractor, run_debate
from pbt.errors import ValidationError
from pbt.personas import load_personas

Q = "What is the capital of France?"


def agents(order: str, weak_persuasion="always", strong_persuasion="never"):
    strong = DebateAgent(
        "strong", ScriptedBackend({"capital of France": "Paris"}, persuasion=strong_persuasion)
    )
    weak = DebateAgent("weak", ScriptedBackend({"capital of France": "Lyon"}, persuasion=weak_persuasion))
    return [strong, weak] if order == "strong-first" else [weak, strong]


def test_strong_first_persuades_the_weak_agent() -> None:
    result = asyncio.run(run_debate(Q, agents("strong-first"), extract=rules_extractor(), gold=["Paris"]))
    assert [(t.round, t.agent, t.answer) for t in result.turns] == [
        (0, "strong", "Paris"),
        (0, "weak", "Lyon"),
        (1, "strong", "Paris"),
        (2, "weak", "Paris"),
    ]
    assert result.agreed and result.final_answers == {"strong": "Paris", "weak": "Paris"}
    assert result.team_accuracy == 1.0 and result.order == ["strong", "weak"]
    # the weak agent's turn: standard prompt, then the transcript (own first answer as assistant)
    prompt = load_personas().render_standard(Q)
    weak_turn = result.turns[3]
    assert weak_turn.messages == [
        {"role": "user", "content": f"{prompt}\n\n{result.turns[0].text}"},
        {"role": "assistant", "content": result.turns[1].text},
        {"role": "user", "content": result.turns[2].text},
    ]


def test_order_dependence_when_both_can_be_persuaded() -> None:
    first = asyncio.run(
        run_debate(
            Q, agents("strong-first", strong_persuasion="always"), extract=rules_extractor(), gold=["Paris"]
        )
    )
    second = asyncio.run(
        run_debate(
            Q, agents("weak-first", strong_persuasion="always"), extract=rules_extractor(), gold=["Paris"]
        )
    )
    # whoever speaks first in the discussion gives in to the other's independent answer
    assert first.final_answers == {"strong": "Lyon", "weak": "Lyon"} and first.team_accuracy == 0.0
    assert second.final_answers == {"weak": "Paris", "strong": "Paris"} and second.team_accuracy == 1.0


def test_stops_after_max_turns_without_agreement() -> None:
    result = asyncio.run(
        run_debate(
            Q,
            agents("strong-first", weak_persuasion="never"),
            extract=rules_extractor(),
            max_turns=3,
            gold=["Paris"],
        )
    )
    assert [t.round for t in result.turns] == [0, 0, 1, 2, 3]
    assert (
        not result.agreed
        and result.correct == {"strong": True, "weak": False}
        and result.team_accuracy == 0.5
    )


def test_agreeing_independent_answers_end_the_debate_at_once() -> None:
    twins = [DebateAgent(n, ScriptedBackend({"capital of France": "Paris"})) for n in ("x", "y")]
    result = asyncio.run(run_debate(Q, twins, extract=rules_extractor()))
    assert [t.round for t in result.turns] == [0, 0] and result.agreed and result.correct is None


def test_llm_extractor_reads_the_newest_response() -> None:
    extractor = ScriptedBackend(name="extractor")
    result = asyncio.run(run_debate(Q, agents("strong-first"), extract=llm_extractor(extractor)))
    assert len(extractor.calls) == len(result.turns)
    messages, params = extractor.calls[-1]
    assert params.temperature == 0.0 and params.max_tokens == 15
    assert result.turns[-1].text.split("\n")[0] in messages[0]["content"]


def test_answer_resolution_and_agreement() -> None:
    assert resolve_answer("Agree", "Lyon", "Paris") == "Paris"
    assert resolve_answer("Disagree", "Lyon", "Paris") == "Lyon"
    assert resolve_answer("NONE", "Lyon", "Paris") == "Lyon"
    assert resolve_answer("NONE", None, "Paris") == "NONE"
    assert resolve_answer("Rome", "Lyon", "Paris") == "Rome"
    assert (
        answers_agree(["Paris", " paris"])
        and not answers_agree(["NONE", "NONE"])
        and not answers_agree(["a", "b"])
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_turns": 17}, "max_turns"), ({"instruction": "no placeholder"}, "instruction")],
)
def test_invalid_arguments(kwargs, field) -> None:
    with pytest.raises(ValidationError) as info:
        asyncio.run(run_debate(Q, agents("strong-first"), extract=rules_extractor(), **kwargs))
    assert info.value.field == field
    with pytest.raises(ValidationError) as info:
        asyncio.run(run_debate(Q, agents("strong-first")[:1], extract=rules_extractor()))
    assert info.value.field == "agents"
