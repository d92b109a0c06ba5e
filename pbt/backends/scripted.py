"""A deterministic agent with written-down rules, for exact tests of the tree and evaluation algorithms.

It never replaces a real model in the product; it lets a test predict every answer in a tree.

Rules (``ScriptedBackend.chat``), applied to the conversation in OpenAI shape:

* **Question.** The question is the content of the first ``user`` message. Its answer is looked
  up in ``answers``: an exact key first, then the longest key contained in the message
  (case-insensitive), so prompt templates around the question do not matter. A question that
  is not in the table gets ``default_answer``.
* **Current answer.** The agent's current answer is the ``Final Answer:`` of its own latest
  ``assistant`` message (parsed with `pbt.answers.parse_final_answer`), or the table
  answer when it has not spoken yet.
* **First turn** (no ``assistant`` message yet, or the last message is not a ``user`` message
  after one): ``"I believe the answer is {A}.\\nFinal Answer: {A}"``.
* **Reply to the other agent** (the last message is ``user`` and the agent has spoken before):
  the other agent's *proposal* is the ``Final Answer:`` of that last message.

  - no proposal (e.g. "Are you sure?"): a *challenge*; if the agent gives in (below) it
    switches to ``doubt_answers[question]`` (default ``NONE``):
    ``"I am not sure any more.\\nFinal Answer: {D}"``; otherwise it repeats its answer:
    ``"Yes, I am sure.\\nFinal Answer: {A}"``.
  - the proposal equals the current answer (case-insensitive): ``"I agree with you.\\nFinal Answer: {A}"``.
  - a different proposal ``P``: if the agent gives in,
    ``"You are right, I change my answer to {P}.\\nFinal Answer: {P}"``; otherwise
    ``"I disagree, I still think the answer is {A}.\\nFinal Answer: {A}"``.
* **Giving in** depends on ``persuasion``:
  ``"never"``; ``"always"``; ``"correct"`` (gives in iff the proposal matches ``gold[question]``
  case-insensitively; a challenge without proposal is then resisted); or a float rate ``r`` in
  [0, 1]: gives in iff ``u < r`` where ``u`` in [0, 1) is derived from SHA-256 of
  (``seed``, ``params.seed``, the whole conversation, the choice index). The same conversation
  therefore always gets the same decision per choice, and the ``n`` choices of one request can
  differ (sibling diversity in trees).
* **Extraction prompts.** A conversation whose last message contains
  `pbt.answers.EXTRACTION_MARKER` is answered as an extractor would:
  ``"Final Answer: X"`` where ``X`` is the ``Final Answer`` of the quoted response (after its
  last ``Response:``), or ``NONE``.
* **Length.** Tokens are whitespace-separated words: ``usage`` counts them, ``max_tokens`` cuts
  the text (``finish_reason="length"``), the first ``stop`` string cuts it (``"stop"``);
  ``min_tokens`` and temperature are ignored.
* ``candidate_logprobs``: for candidates ``yes``/``no`` the log-probabilities are
  ``log 0.8``/``log 0.2`` if the agent would give in to the last user message's proposal (or
  the proposal equals its current answer), else reversed; for other candidates, a candidate
  equal to the current answer gets ``log 0.9`` and the others share ``log 0.1`` equally.

Every call is recorded in ``calls`` (messages, params) and ``max_in_flight`` holds the largest
number of concurrent ``chat`` calls seen (``delay`` seconds of simulated latency per call make
concurrency observable).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pbt.answers import EXTRACTION_MARKER, NONE, find_final_answer, parse_final_answer
from pbt.backends.base import ChatBackend, ChatResult, Choice, Message, SamplingParams, Usage

Persuasion = Literal["never", "always", "correct"] | float


class ScriptedBackend(ChatBackend):
    """Deterministic rule-based agent; see the module docstring for the exact rules."""

    def __init__(
        self,
        answers: Mapping[str, str] | None = None,
        *,
        default_answer: str = NONE,
        persuasion: Persuasion = "never",
        gold: Mapping[str, str] | None = None,
        doubt_answers: Mapping[str, str] | None = None,
        seed: int = 0,
        delay: float = 0.0,
        name: str = "scripted",
    ) -> None:
        if isinstance(persuasion, float | int) and not isinstance(persuasion, bool):
            if not 0.0 <= float(persuasion) <= 1.0:
                raise ValueError(f"persuasion rate must be in [0, 1], got {persuasion}")
            persuasion = float(persuasion)
        elif persuasion not in ("never", "always", "correct"):
            raise ValueError(f"persuasion must be 'never', 'always', 'correct' or a rate, got {persuasion!r}")
        if persuasion == "correct" and gold is None:
            raise ValueError("persuasion='correct' needs a gold answer table")
        self.answers = dict(answers or {})
        self.default_answer = default_answer
        self.persuasion = persuasion
        self.gold = {k.lower(): v for k, v in (gold or {}).items()}
        self.doubt_answers = {k.lower(): v for k, v in (doubt_answers or {}).items()}
        self.seed = seed
        self.delay = delay
        self.name = name
        self.calls: list[tuple[list[Message], SamplingParams]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    # -- rules -------------------------------------------------------------------------------
    @staticmethod
    def question_of(messages: Sequence[Message]) -> str:
        return next((m["content"] for m in messages if m["role"] == "user"), "")

    def _lookup(self, table: Mapping[str, str], question: str) -> str | None:
        if question in table:
            return table[question]
        low = question.lower()
        hits = [k for k in table if k and k.lower() in low]
        return table[max(hits, key=len)] if hits else None

    def table_answer(self, question: str) -> str:
        found = self._lookup(self.answers, question)
        return self.default_answer if found is None else found

    def current_answer(self, messages: Sequence[Message]) -> str:
        own = [m["content"] for m in messages if m["role"] == "assistant"]
        if own:
            return parse_final_answer(own[-1])
        return self.table_answer(self.question_of(messages))

    def _proposal(self, messages: Sequence[Message]) -> str | None:
        raw = find_final_answer(messages[-1]["content"])
        return None if raw is None else parse_final_answer(messages[-1]["content"])

    def gives_in(
        self, messages: Sequence[Message], proposal: str | None, choice: int, seed: int | None
    ) -> bool:
        """Whether the agent yields to the last message (rule "Giving in" above)."""
        if self.persuasion == "never":
            return False
        if self.persuasion == "always":
            return True
        if self.persuasion == "correct":
            gold = self._lookup(self.gold, self.question_of(messages).lower())
            return proposal is not None and gold is not None and proposal.lower() == gold.lower()
        key = repr((self.seed, seed, [(m["role"], m["content"]) for m in messages], choice))
        u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
        return u < float(self.persuasion)

    def reply(self, messages: Sequence[Message], choice: int = 0, seed: int | None = None) -> str:
        """The full (untruncated) text the agent says next."""
        if not messages:
            raise ValueError("messages must not be empty")

        last = messages[-1]
        if EXTRACTION_MARKER in last["content"]:
            quoted = last["content"].rsplit("Response:", 1)[-1]
            return f"Final Answer: {parse_final_answer(quoted)}"
        current = self.current_answer(messages)
        spoke = any(m["role"] == "assistant" for m in messages)
        if not spoke or last["role"] != "user":
            return f"I believe the answer is {current}.\nFinal Answer: {current}"
        proposal = self._proposal(messages)
        if proposal is None:
            if self.gives_in(messages, None, choice, seed):
                question = self.question_of(messages).lower()
                doubt = self._lookup(self.doubt_answers, question) or NONE
                return f"I am not sure any more.\nFinal Answer: {doubt}"
            return f"Yes, I am sure.\nFinal Answer: {current}"
        if proposal.lower() == current.lower():
            return f"I agree with you.\nFinal Answer: {current}"
        if self.gives_in(messages, proposal, choice, seed):
            return f"You are right, I change my answer to {proposal}.\nFinal Answer: {proposal}"
        return f"I disagree, I still think the answer is {current}.\nFinal Answer: {current}"

    # -- ChatBackend -------------------------------------------------------------------------
    async def chat(self, messages: Sequence[Message], params: SamplingParams) -> ChatResult:
        messages = [dict(m) for m in messages]
        self.calls.append((messages, params))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            choices = []
            completion_total = 0
            for i in range(params.n):
                text, finish = _truncate(self.reply(messages, i, params.seed), params)
                count = len(text.split())
                completion_total += count
                choices.append(Choice(index=i, text=text, finish_reason=finish, completion_tokens=count))
        finally:
            self.in_flight -= 1
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        return ChatResult(
            choices=choices,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_total),
            model=self.name,
        )

    async def candidate_logprobs(self, messages: Sequence[Message], candidates: Sequence[str]) -> list[float]:
        current = self.current_answer(messages)
        lowered = [c.strip().lower() for c in candidates]
        if set(lowered) <= {"yes", "no"}:
            proposal = self._proposal(messages) if messages else None
            accept = (proposal is not None and proposal.lower() == current.lower()) or self.gives_in(
                messages, proposal, 0, None
            )
            p_yes = 0.8 if accept else 0.2
            return [math.log(p_yes if c == "yes" else 1 - p_yes) for c in lowered]
        others = max(1, sum(c != current.lower() for c in lowered))
        return [math.log(0.9) if c == current.lower() else math.log(0.1 / others) for c in lowered]


def _truncate(text: str, params: SamplingParams) -> tuple[str, str]:
    for stop in params.stop:
        if stop and stop in text:
            return text[: text.index(stop)], "stop"
    words = text.split(" ")
    # count whitespace-separated words the same way usage does
    if len(text.split()) > params.max_tokens:
        kept, count = [], 0
        for w in words:
            count += len(w.split())
            if count > params.max_tokens:
                break
            kept.append(w)
        return " ".join(kept), "length"
    return text, "stop"
