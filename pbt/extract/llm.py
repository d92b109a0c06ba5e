"""Model-based extraction through any `ChatBackend`: the answer extractor and the yes/no confidence."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pbt.answers import NONE, parse_final_answer
from pbt.backends.base import ChatBackend, SamplingParams
from pbt.extract.prompts import confidence_prompt, extraction_prompt

YES_FORMS = ("yes", "Yes", " yes", " Yes")
NO_FORMS = ("no", "No", " no", " No")


class LLMExtractor:
    """The paper's extractor: the question and the newest response only, greedy, at most 15 tokens.

    An empty response is ``NONE`` without a model call (as in the reference).
    """

    name = "llm"

    def __init__(self, backend: ChatBackend, max_tokens: int = 15):
        self.backend = backend
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens, n=1)

    async def extract(self, question: str, response: str, candidates: Sequence[str] = ()) -> str:
        if not response.strip():
            return NONE
        messages = [{"role": "user", "content": extraction_prompt(question, response)}]
        result = await self.backend.chat(messages, self.params)
        return parse_final_answer(result.choices[0].text)


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


async def yes_probability(backend: ChatBackend, prompt: str) -> float:
    """p(yes) / (p(yes) + p(no)) for the assistant's reply to `prompt`, from candidate log-probabilities.

    Case and leading-space variants of each word are pooled. Raises `NotImplementedError` when the
    backend cannot score candidates.
    """
    scores = await backend.candidate_logprobs([{"role": "user", "content": prompt}], [*YES_FORMS, *NO_FORMS])
    yes, no = _logsumexp(scores[: len(YES_FORMS)]), _logsumexp(scores[len(YES_FORMS) :])
    if yes == no == -math.inf:
        return 0.5
    return 1.0 / (1.0 + math.exp(no - yes))


async def answer_confidence(backend: ChatBackend, question: str, response: str, answer: str) -> float:
    """The optional confidence of PBT-METHOD.md §2: p(yes)/(p(yes)+p(no)) for "do you accept the answer?"."""
    return await yes_probability(backend, confidence_prompt(question, response, answer))
