"""Agreement judges for the preference engine's model-based filter (`pbt.prefs.filters.ModelFilter`).

Both classes satisfy `pbt.prefs.filters.AgreementJudge`: synchronous, batched methods
``answers_agree(question, pairs)`` and ``responses_agree(question, responses)``.

* `RuleAgreementJudge`: offline. Two answers agree when their normalised forms are equal, or one
  contains the other with a Levenshtein ratio above 0.5 (the rule of PBT-METHOD.md §3); a response
  agrees when the rule extractor's stance is ``Agree`` (a ``Disagree`` stance or none: False).
* `LLMAgreementJudge`: asks a model yes/no questions through any `ChatBackend`; uses
  p(yes)/(p(yes)+p(no)) > `threshold` from candidate log-probabilities when the backend has
  them, else the greedy reply's first word. Equal normalised answers agree without a call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from pbt.answers import AGREE, levenshtein_ratio, normalize_answer
from pbt.backends.base import ChatBackend, SamplingParams
from pbt.extract.llm import yes_probability
from pbt.extract.rules import stance

T = TypeVar("T")

ANSWERS_PROMPT = (
    "Two people answered the same question. Decide whether their answers mean the same thing "
    "(synonyms, spellings and abbreviations of the same answer count as the same). Reply with yes or no.\n\n"
    "Question: {question}\nAnswer A: {a}\nAnswer B: {b}\nDo the answers agree?"
)
RESPONSE_PROMPT = (
    "Here is a response from a discussion about a question. Decide whether the response agrees with the "
    "previous speaker (accepts their answer) rather than disagreeing. Reply with yes or no.\n\n"
    "Question: {question}\nResponse: {response}\nDoes the response agree?"
)


def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine from synchronous code, also when called inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


def same_answer(a: str, b: str) -> bool:
    na, nb = normalize_answer(a), normalize_answer(b)
    if not na or not nb:
        return False
    return na == nb or ((na in nb or nb in na) and levenshtein_ratio(na, nb) > 0.5)


class RuleAgreementJudge:
    """Offline agreement decisions (see the module docstring)."""

    def answers_agree(self, question: str, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        return [same_answer(a, b) for a, b in pairs]

    def responses_agree(self, question: str, responses: Sequence[str]) -> list[bool]:
        return [stance(r) == AGREE for r in responses]


class LLMAgreementJudge:
    """Agreement decisions by a model (see the module docstring)."""

    def __init__(self, backend: ChatBackend, threshold: float = 0.5, max_concurrency: int = 16):
        self.backend = backend
        self.threshold = threshold
        self.max_concurrency = max_concurrency

    async def _yes(self, prompt: str) -> bool:
        try:
            return await yes_probability(self.backend, prompt) > self.threshold
        except NotImplementedError:
            result = await self.backend.chat(
                [{"role": "user", "content": prompt}], SamplingParams(temperature=0.0, max_tokens=3)
            )
            words = result.choices[0].text.strip().lower().split()
            return bool(words) and words[0].strip(".,!") == "yes"

    async def _all(self, prompts: Sequence[str | None]) -> list[bool | None]:
        limit = asyncio.Semaphore(self.max_concurrency)

        async def one(prompt: str | None) -> bool | None:
            if prompt is None:
                return None
            async with limit:
                return await self._yes(prompt)

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    async def answers_agree_async(self, question: str, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        prompts = [
            None
            if normalize_answer(a) == normalize_answer(b)
            else ANSWERS_PROMPT.format(question=question, a=a, b=b)
            for a, b in pairs
        ]
        return [True if v is None else v for v in await self._all(prompts)]

    async def responses_agree_async(self, question: str, responses: Sequence[str]) -> list[bool]:
        prompts = [RESPONSE_PROMPT.format(question=question, response=r.strip()) for r in responses]
        return [bool(v) for v in await self._all(prompts)]

    def answers_agree(self, question: str, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        return run_sync(self.answers_agree_async(question, pairs))

    def responses_agree(self, question: str, responses: Sequence[str]) -> list[bool]:
        return run_sync(self.responses_agree_async(question, responses))
