"""Build one dialogue tree (PBT-METHOD §2) with concurrent expansion of every open branch.

A tree grows level by level per branch: once a node and its answer extraction are done, its
children are requested at once (siblings that share a persona share one prompt and are sampled
with a single ``n > 1`` request). Many trees are built concurrently by `pbt.orchestrate.job`, so
the frontier of all of them is in flight together, bounded per endpoint by `AgentPool`.

Node ids are assigned after the tree is complete, breadth first (0 = level-0 answer), so they do
not depend on the order in which requests finished.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

from pbt.answers import node_agrees, parse_final_answer
from pbt.backends.base import Message, SamplingParams
from pbt.config import RunConfig
from pbt.extract.llm import LLMExtractor
from pbt.orchestrate.agents import AgentPool
from pbt.orchestrate.messages import clean_response, speaker_messages
from pbt.personas import PersonaSet
from pbt.tree.model import AgentInfo, Question, Tree, Usage

ROLES = ("a", "b")


def replica_tree_id(question_id: str, replica: int) -> str:
    """The id (and store key stem) of replica `replica` of a question's tree: the question id for 0."""
    return question_id if replica == 0 else f"{question_id}-r{replica}"


@dataclass
class _Draft:
    """A generated node before ids are assigned."""

    agent: int
    persona: str
    text: str
    answers: list[str | None]
    messages: list[Message]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    slot: tuple[int, ...]
    children: list[_Draft] = field(default_factory=list)


class _PoolRole:
    """One role of an `AgentPool` seen as a chat backend (what `LLMExtractor` calls)."""

    def __init__(self, pool: AgentPool, role: str):
        self.pool, self.role = pool, role

    async def chat(self, messages: list[Message], params: SamplingParams):
        return await self.pool.chat(self.role, messages, params)


class AnswerExtractor:
    """Extract a node's answer: the extractor model (``llm``) or the ``Final Answer`` rule (``rules``)."""

    def __init__(self, config: RunConfig, pool: AgentPool):
        self.mode = config.extraction.mode
        self.llm = LLMExtractor(_PoolRole(pool, "extractor"), max_tokens=config.extraction.max_tokens)

    async def extract(self, question: str, response: str) -> str:
        if self.mode == "rules":
            return parse_final_answer(response)
        return await self.llm.extract(question, response)


class TreeBuilder:
    """Builds `pbt.tree/v1` trees for one run configuration with the agents of `pool`."""

    def __init__(self, config: RunConfig, pool: AgentPool, *, metadata: dict[str, Any] | None = None):
        self.config = config
        self.pool = pool
        self.personas: PersonaSet = config.persona_set
        self.branching = config.branching()
        self.extractor = AnswerExtractor(config, pool)
        self.metadata = dict(metadata or {})
        self._config_record = config.model_dump(
            mode="json", exclude={"dataset": {"questions"}, "store": True}
        )

    # ---- prompts -----------------------------------------------------------------------------
    def messages_for(self, question: str, path: list[_Draft], agent: int, persona: str) -> list[Message]:
        agent_config = getattr(self.config.agents, ROLES[agent])
        return speaker_messages(
            self.personas.render(persona, question),
            [(d.agent, d.text) for d in path],
            agent,
            merge_consecutive=agent_config.merge_consecutive,
        )

    def _seed(self, tree_id: str, slot: tuple[int, ...], persona: str) -> int | None:
        if self.config.sampling.seed is None:
            return None
        key = f"{self.config.sampling.seed}:{tree_id}:{slot}:{persona}"
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") >> 1

    # ---- generation --------------------------------------------------------------------------
    async def _generate(
        self,
        question: Question,
        tree_id: str,
        path: list[_Draft],
        agent: int,
        persona: str,
        slots: list[tuple[int, ...]],
    ) -> list[_Draft]:
        """One request for all `slots` (siblings with this persona), then extraction per choice."""
        messages = self.messages_for(question.text, path, agent, persona)
        params = self.config.sampling.params(n=len(slots), seed=self._seed(tree_id, slots[0], persona))
        result = await self.pool.chat(ROLES[agent], messages, params)
        if len(result.choices) < len(slots):
            raise RuntimeError(
                f"{self.pool.backend(ROLES[agent]).name} returned {len(result.choices)} choices, asked {len(slots)}"
            )
        texts = [clean_response(choice.text) for choice in result.choices[: len(slots)]]
        extracted = await asyncio.gather(*(self.extractor.extract(question.text, t) for t in texts))
        carried: list[str | None] = list(path[-1].answers) if path else [None, None]
        drafts = []
        for slot, text, answer, choice in zip(slots, texts, extracted, result.choices, strict=False):
            answers = list(carried)
            answers[agent] = answer
            drafts.append(
                _Draft(
                    agent=agent,
                    persona=persona,
                    text=text,
                    answers=answers,
                    messages=messages,
                    prompt_tokens=result.usage.prompt_tokens,
                    completion_tokens=choice.completion_tokens,
                    finish_reason=choice.finish_reason,
                    slot=slot,
                )
            )
        return drafts

    async def _expand(self, question: Question, tree_id: str, path: list[_Draft]) -> None:
        node = path[-1]
        level = len(path)  # the level of the children
        if level >= len(self.branching):
            return
        if self.config.tree.stop_on_agreement and level > 1 and node_agrees(node.answers):
            return
        agent = level % 2
        names = self.personas.for_agent(agent)
        slot_personas = [names[i % len(names)] for i in range(self.branching[level])]
        groups: dict[str, list[tuple[int, ...]]] = {}
        for i, persona in enumerate(slot_personas):
            groups.setdefault(persona, []).append((*node.slot, i))
        batches = await asyncio.gather(
            *(
                self._generate(question, tree_id, path, agent, persona, slots)
                for persona, slots in groups.items()
            )
        )
        children = sorted((d for batch in batches for d in batch), key=lambda d: d.slot)
        node.children = children
        await asyncio.gather(*(self._expand(question, tree_id, [*path, child]) for child in children))

    async def build(self, question: Question, replica: int = 0) -> Tree:
        """One tree for `question`. Replica 0 has the question's id; replica j > 0 (another tree for
        the same question, `TreeConfig.trees_per_question`) has id ``<question id>-r<j>`` and its own
        sampling seeds and level-0 persona draw."""
        tree_id = replica_tree_id(question.id, replica)
        level0 = self.personas.pick_level0(tree_id, seed=self.config.sampling.seed or 0)
        (root,) = await self._generate(question, tree_id, [], 0, level0, [()])
        await self._expand(question, tree_id, [root])
        return self._assemble(question, tree_id, root, level0)

    # ---- assembly ----------------------------------------------------------------------------
    def _assemble(self, question: Question, tree_id: str, root: _Draft, level0: str) -> Tree:
        agents = []
        for role, name in zip(ROLES, ("A", "B"), strict=True):
            agent = getattr(self.config.agents, role)
            agents.append(AgentInfo(name=name, model=agent.model or None, endpoint=agent.endpoint))
        tree = Tree(
            id=tree_id,
            question=question,
            agents=agents,
            config=self._config_record,
            metadata={**self.metadata, "level0_persona": level0, "branching": self.branching},
        )
        queue: list[tuple[_Draft, str | None]] = [(root, None)]
        while queue:
            draft, parent = queue.pop(0)
            node = tree.add_node(
                parent=parent,
                agent=draft.agent,
                text=draft.text,
                answers=draft.answers,
                persona=draft.persona,
                usage=Usage(prompt_tokens=draft.prompt_tokens, completion_tokens=draft.completion_tokens),
                messages=[dict(m) for m in draft.messages],
                extra={"finish_reason": draft.finish_reason},
            )
            queue.extend((child, node.id) for child in draft.children)
        return tree
