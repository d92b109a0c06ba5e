"""Team debate (PBT-METHOD §6d): agents answer independently, then discuss in a fixed order.

Round 0: every agent answers the question on its own (the standard, persona-free prompt).
Rounds 1..max_turns: one turn each, ``agents[(t - 1) % len(agents)]`` speaks, seeing its prompt,
its own earlier turns as ``assistant`` and everyone else's as ``user`` (the transcript in order).
After round 0 and after every turn the newest answers are compared; the debate stops when they
agree. An extracted ``Agree`` takes the answer of the turn it replied to; ``Disagree`` or ``NONE``
after an earlier answer keeps the speaker's previous answer. Team accuracy is the mean of the
agents' final-answer accuracy; order dependence compares the two speaking orders.

    result = await run_debate(question, [DebateAgent("strong", b1), DebateAgent("weak", b2)],
                              extract=llm_extractor(extractor_backend), gold=["Paris"])
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pbt.answers import AGREE, DISAGREE, NONE, is_correct_eval, normalize_answer, parse_final_answer
from pbt.backends.base import ChatBackend, Message, SamplingParams
from pbt.errors import ValidationError
from pbt.extract.llm import LLMExtractor
from pbt.orchestrate.messages import clean_response, speaker_messages
from pbt.personas import fill, load_personas

Extract = Callable[[str, str], Awaitable[str]]

#: the paper's team-debate decoding: greedy, at most 80 new tokens
GREEDY = SamplingParams(temperature=0.0, max_tokens=80, min_tokens=0)
MAX_DEBATE_TURNS = 16


@dataclass
class DebateAgent:
    name: str
    backend: ChatBackend
    merge_consecutive: bool = True  # like the trees and the preference prompts


@dataclass
class DebateTurn:
    index: int
    round: int  # 0: independent answers; then 1..max_turns
    agent: str
    text: str
    raw_answer: str  # what the extractor returned
    answer: str  # after resolving Agree / Disagree / NONE
    messages: list[Message]
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class DebateResult:
    question: str
    turns: list[DebateTurn]
    final_answers: dict[str, str]
    agreed: bool
    correct: dict[str, bool] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    order: list[str] = field(default_factory=list)

    @property
    def team_accuracy(self) -> float | None:
        """Mean of the agents' final-answer correctness (None without gold answers)."""
        if self.correct is None:
            return None
        return sum(self.correct.values()) / len(self.correct)


def rules_extractor() -> Extract:
    """Parse the response's own ``Final Answer:`` line (no model)."""

    async def extract(question: str, response: str) -> str:
        return parse_final_answer(response)

    return extract


def llm_extractor(backend: ChatBackend, max_tokens: int = 15) -> Extract:
    """The paper's extractor (`pbt.extract.llm.LLMExtractor`): the question and the newest response."""
    extractor = LLMExtractor(backend, max_tokens=max_tokens)

    async def extract(question: str, response: str) -> str:
        return await extractor.extract(question, response)

    return extract


def resolve_answer(raw: str, previous_own: str | None, replied_to: str | None) -> str:
    """An agent's effective answer after a turn (see the module docstring)."""
    if raw == AGREE:
        return replied_to or previous_own or NONE
    if raw in (DISAGREE, NONE) and previous_own is not None:
        return previous_own
    return raw


def answers_agree(answers: Sequence[str]) -> bool:
    """All agents hold the same answer after the evaluation normalizer (lowercase, no punctuation
    or articles), and it is a real answer (not NONE / Agree / Disagree / empty)."""
    if any(a.strip() in (NONE, AGREE, DISAGREE) for a in answers):
        return False
    keys = {normalize_answer(a) for a in answers}
    return len(keys) == 1 and bool(next(iter(keys)))


async def run_debate(
    question: str,
    agents: Sequence[DebateAgent],
    *,
    extract: Extract,
    max_turns: int = 4,
    sampling: SamplingParams = GREEDY,
    instruction: str | None = None,
    gold: Sequence[str] | None = None,
) -> DebateResult:
    """Run one team debate; see the module docstring for the protocol."""
    if len(agents) < 2:
        raise ValidationError(f"a debate needs at least 2 agents, got {len(agents)}", field="agents")
    names = [a.name for a in agents]
    if len(set(names)) != len(names) or not all(names):
        raise ValidationError(f"agent names must be unique and non-empty, got {names}", field="agents")
    if not 0 <= max_turns <= MAX_DEBATE_TURNS:
        raise ValidationError(f"must be in 0..{MAX_DEBATE_TURNS}, got {max_turns}", field="max_turns")
    if not question.strip():
        raise ValidationError("must not be empty", field="question")
    template = instruction or load_personas().standard
    if "{question}" not in template:
        raise ValidationError("must contain {question}", field="instruction")
    prompt = fill(template, question)
    params = sampling.model_copy(update={"n": 1})
    transcript: list[tuple[int, str]] = []  # (agent index, text)
    turns: list[DebateTurn] = []
    latest: list[str | None] = [None] * len(agents)

    async def speak(index: int, history: list[tuple[int, str]], round_: int) -> DebateTurn:
        agent = agents[index]
        messages = speaker_messages(prompt, history, index, merge_consecutive=agent.merge_consecutive)
        result = await agent.backend.chat(messages, params)
        text = clean_response(result.choices[0].text if result.choices else "")
        raw = await extract(question, text)
        replied_to = None
        if history:
            last_speaker = history[-1][0]
            replied_to = latest[last_speaker]
        answer = resolve_answer(raw, latest[index], replied_to)
        return DebateTurn(
            index=0,
            round=round_,
            agent=agent.name,
            text=text,
            raw_answer=raw,
            answer=answer,
            messages=messages,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
        )

    first = await asyncio.gather(*(speak(i, [], 0) for i in range(len(agents))))
    for i, turn in enumerate(first):
        turn.index = len(turns)
        turns.append(turn)
        transcript.append((i, turn.text))
        latest[i] = turn.answer
    agreed = answers_agree([a or "" for a in latest])
    round_ = 0
    while not agreed and round_ < max_turns:
        round_ += 1
        speaker = (round_ - 1) % len(agents)
        turn = await speak(speaker, list(transcript), round_)
        turn.index = len(turns)
        turns.append(turn)
        transcript.append((speaker, turn.text))
        latest[speaker] = turn.answer
        agreed = answers_agree([a or "" for a in latest])
    final = {agents[i].name: latest[i] or NONE for i in range(len(agents))}
    correct = {name: is_correct_eval(ans, gold) for name, ans in final.items()} if gold else None
    return DebateResult(
        question=question,
        turns=turns,
        final_answers=final,
        agreed=agreed,
        correct=correct,
        prompt_tokens=sum(t.prompt_tokens for t in turns),
        completion_tokens=sum(t.completion_tokens for t in turns),
        order=names,
    )
