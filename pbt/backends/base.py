"""The generation backend contract shared by the orchestrator, the evaluator and the extractors.

Every backend is async and speaks in chat messages (OpenAI shape: ``{"role", "content"}``).
Implementations: local transformers (`pbt.backends.local`), OpenAI-compatible HTTP
(`pbt.backends.http`) and scripted rules for exact algorithm tests (`pbt.backends.scripted`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


class SamplingParams(BaseModel):
    """Sampling parameters; the names and meanings follow vLLM's OpenAI server."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.7, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, description="None or -1: no top-k filtering.")
    max_tokens: int = Field(80, ge=1, description="Upper bound on new tokens per choice.")
    min_tokens: int = Field(0, ge=0, description="Lower bound on new tokens before EOS may end a choice.")
    n: int = Field(1, ge=1, description="Number of choices sampled for the same prompt.")
    seed: int | None = Field(None, description="Seed for reproducible sampling.")
    stop: list[str] = Field(default_factory=list, description="Strings that end a choice (not included).")

    @model_validator(mode="after")
    def _check(self) -> SamplingParams:
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must not exceed max_tokens ({self.max_tokens})")
        return self

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Choice(BaseModel):
    index: int
    text: str
    finish_reason: str = "stop"  # "stop" | "length"
    completion_tokens: int = 0


class ChatResult(BaseModel):
    choices: list[Choice]
    usage: Usage = Field(default_factory=Usage)
    model: str = ""


class ChatBackend(abc.ABC):
    """An LLM endpoint that completes chat conversations."""

    #: a human-readable name used in errors and logs (endpoint URL, model dir, "scripted")
    name: str = "backend"

    @abc.abstractmethod
    async def chat(self, messages: Sequence[Message], params: SamplingParams) -> ChatResult:
        """Complete one conversation; returns ``params.n`` choices."""

    async def candidate_logprobs(self, messages: Sequence[Message], candidates: Sequence[str]) -> list[float]:
        """Log-probability of each candidate continuation of the assistant turn.

        Used for yes/no confidence and agree/disagree scoring. Backends that cannot compute it
        raise `NotImplementedError`.
        """
        raise NotImplementedError(f"{self.name} cannot score candidate continuations")

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections, threads or models."""

    async def __aenter__(self) -> ChatBackend:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
