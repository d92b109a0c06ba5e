"""The agents of a run: one backend per role, a bounded number of requests in flight per endpoint.

Roles are ``a``, ``b`` and ``extractor``. Roles that name the same endpoint share one in-flight
limit (the endpoint's batch window). Retries live in the HTTP backend (tenacity, exponential
backoff); once they are exhausted it raises `UnavailableError`, which ends the job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pbt.backends.base import ChatBackend, ChatResult, Message, SamplingParams
from pbt.backends.factory import BackendFactory, agent_backend
from pbt.config import AgentConfig, AgentsConfig
from pbt.errors import ValidationError

log = logging.getLogger(__name__)


@dataclass
class UsageCounter:
    """Totals over every request of a job (prompt tokens counted once per request)."""

    requests: int = 0
    failed_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_role: dict[str, int] = field(default_factory=dict)


class AgentPool:
    """Backends by role with a per-endpoint semaphore; use as an async context manager."""

    def __init__(self, agents: AgentsConfig, factory: BackendFactory | None = None):
        self.agents = agents
        self.factory = factory or agent_backend
        self.usage = UsageCounter()
        self._backends: dict[str, ChatBackend] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._endpoint_of: dict[str, str] = {}
        for role in ("a", "b", "extractor"):
            agent: AgentConfig | None = getattr(agents, role)
            if agent is None:
                continue
            self._backends[role] = self.factory(role, agent)
            self._endpoint_of[role] = agent.endpoint
            if agent.endpoint not in self._limits:
                self._limits[agent.endpoint] = asyncio.Semaphore(agent.max_in_flight)

    def backend(self, role: str) -> ChatBackend:
        return self._backends[role]

    def model_name(self, role: str) -> str:
        agent = getattr(self.agents, role)
        return (agent.model if agent is not None else "") or self._backends[role].name

    async def chat(self, role: str, messages: Sequence[Message], params: SamplingParams) -> ChatResult:
        if role not in self._backends:
            raise ValidationError(f"no agent configured for role {role!r}", field=f"agents.{role}")
        async with self._limits[self._endpoint_of[role]]:
            try:
                result = await self._backends[role].chat(messages, params)
            except Exception:
                self.usage.failed_requests += 1
                raise
        self.usage.requests += 1
        self.usage.by_role[role] = self.usage.by_role.get(role, 0) + 1
        self.usage.prompt_tokens += result.usage.prompt_tokens
        self.usage.completion_tokens += result.usage.completion_tokens
        return result

    async def aclose(self) -> None:
        seen: set[int] = set()
        for backend in self._backends.values():
            if id(backend) not in seen:
                seen.add(id(backend))
                await backend.aclose()

    async def __aenter__(self) -> AgentPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
