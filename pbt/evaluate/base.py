"""What every suite shares: work units, the run context, talking to agents, judging answers."""

from __future__ import annotations

import abc
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pbt.backends.base import ChatBackend, Message, SamplingParams
from pbt.evaluate.config import EvalConfig
from pbt.evaluate.stats import MetricValue, Stat, summarize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unit:
    """One example of one suite: a model (or team) on one item under one seed."""

    key: str
    seed: int
    item_id: str
    payload: Any = field(compare=False, hash=False)
    models: tuple[str, ...] = ()

    @property
    def request_seed(self) -> int:
        """The sampling seed sent with this unit's requests: derived from the run seed and the item, so
        items draw independent random numbers (with the run seed itself on every request, a seeded
        backend, vLLM or the local one, draws the same numbers for every item, and a model whose
        choice is a near coin flip lands on the same side for all of them). Every model gets the
        same seed for an item."""
        digest = hashlib.sha256(f"{self.seed}/{self.item_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class Extractor(Protocol):
    """Turns a free-form response into a short answer (or Agree / Disagree / NONE).

    Implemented by `pbt.extract.rules.RuleExtractor` (offline; `candidates` are answers the
    response may commit to) and `pbt.extract.llm.LLMExtractor` (the paper's extractor model).
    """

    name: str

    async def extract(self, question: str, response: str, candidates: Sequence[str] = ()) -> str: ...


@dataclass
class RunContext:
    """What a suite needs at run time: one backend per model name, the extractor, the config."""

    config: EvalConfig
    backends: Mapping[str, ChatBackend]
    extractor: Extractor
    is_correct: Callable[[str | None, Sequence[str]], bool]

    def backend(self, model: str) -> ChatBackend:
        return self.backends[model]

    def params(
        self, *, seed: int, temperature: float | None = None, max_tokens: int | None = None
    ) -> SamplingParams:
        s = self.config.sampling
        return SamplingParams(
            temperature=(s.temperature or 0.0) if temperature is None else temperature,
            top_p=s.top_p,
            max_tokens=max_tokens or s.max_tokens,
            seed=seed,
        )

    async def ask(self, model: str, messages: Sequence[Message], params: SamplingParams) -> str:
        """One chat completion from `model`'s endpoint; its errors (UnavailableError, ...) propagate."""
        result = await self.backend(model).chat(list(messages), params)
        return result.choices[0].text.strip()

    async def answer_of(self, question: str, response: str, candidates: Sequence[str] = ()) -> str:
        """The short answer `response` commits to (`candidates`: gold aliases, answers seen so far)."""
        return await self.extractor.extract(question, response, list(candidates))


class Suite(abc.ABC):
    """A persuasion evaluation: enumerates its units, runs one, and turns records into metrics."""

    name: str

    def __init__(self, config: EvalConfig):
        self.config = config

    @abc.abstractmethod
    def units(self) -> list[Unit]:
        """Every example this suite runs, in a stable order."""

    @abc.abstractmethod
    async def run_unit(self, unit: Unit, ctx: RunContext) -> dict[str, Any]:
        """Run one example; the record must hold `key`, `seed`, `item_id` and the metric columns."""

    @abc.abstractmethod
    def metric_specs(self) -> dict[str, tuple[Stat, list[str]]]:
        """Metric name -> (statistic, columns it reads)."""

    @abc.abstractmethod
    def group_of(self, record: Mapping[str, Any]) -> list[str]:
        """The groups a record belongs to (``base``, ``base/NQ1``, ``pbt+base/a_first``...)."""

    def metrics_for_group(self, group: str) -> list[str]:
        """Names of the metrics that apply to `group` (default: all)."""
        return list(self.metric_specs())

    def summarize(self, records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
        """{group: {metric: MetricValue.to_dict()}} over finished records."""
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for r in records:
            for g in self.group_of(r):
                groups.setdefault(g, []).append(r)
        specs = self.metric_specs()
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for g in sorted(groups):
            out[g] = {}
            for name in self.metrics_for_group(g):
                stat, cols = specs[name]
                value: MetricValue = summarize(
                    groups[g],
                    stat,
                    columns=cols,
                    samples=self.config.bootstrap_samples,
                    confidence=self.config.confidence,
                )
                out[g][name] = value.to_dict()
        return out
