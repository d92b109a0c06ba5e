"""The `pbt.tree/v1` data model: one dialogue tree per question.

A tree holds the question (id, text, gold aliases), the two agents, the run configuration,
free-form metadata and its nodes. The nodes are kept in a dict keyed by id (insertion order is
the order in the file), so every lookup by id is O(1). In the file the nodes are a JSON list,
so that a duplicate id is an error rather than silently overwritten.

Level 0 (depth 0) is agent A's first answer and has ``parent = None``; the reference
implementation's extra "prompt" root node is not a node here (it is kept in ``Tree.source`` when
a reference file is imported, so that export is lossless).

``Node.answers`` holds both agents' current answers *after* the node: index 0 is agent A, index 1
is agent B. The speaker's entry is its newly extracted answer, the other one is carried over
from the parent. ``None`` means "no answer yet".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from pbt.errors import NotFoundError

SCHEMA_VERSION = "pbt.tree/v1"
AGENT_NAMES = ("A", "B")


class StructureError(ValueError):
    """A tree whose nodes do not form a tree (dangling parent, cycle, inconsistent children...).

    `field` is the path of the offending value, for example ``nodes[id=7].parent``.
    """

    def __init__(self, message: str, field: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class Usage(BaseModel):
    """Token usage of the call that produced a node."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)


class Node(BaseModel):
    """One turn of the dialogue."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    parent: str | None = None
    children: list[str] = Field(default_factory=list)
    depth: int = Field(ge=0)
    agent: Literal[0, 1] = Field(description="speaking agent: 0 = A, 1 = B")
    persona: str | None = None
    text: str = ""
    answers: list[str | None] = Field(
        default_factory=lambda: [None, None],
        description="both agents' current answers after this node, index = agent",
    )
    confidence: list[float | None] | None = Field(
        None, description="optional confidence per agent (index = agent)"
    )
    usage: Usage | None = None
    messages: list[dict[str, Any]] | None = Field(
        None, description="the chat messages the speaker saw (optional, for debugging and replay)"
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="format-specific values kept for lossless conversion"
    )

    @field_validator("answers")
    @classmethod
    def _two_answers(cls, value: list[str | None]) -> list[str | None]:
        if len(value) != 2:
            raise ValueError(f"must hold exactly 2 answers (index = agent), got {len(value)}")
        return value

    @field_validator("confidence")
    @classmethod
    def _two_confidences(cls, value: list[float | None] | None) -> list[float | None] | None:
        if value is not None and len(value) != 2:
            raise ValueError(f"must hold exactly 2 values (index = agent), got {len(value)}")
        return value

    @property
    def agent_name(self) -> str:
        return AGENT_NAMES[self.agent]


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    text: str
    gold: list[str] = Field(default_factory=list, description="gold answer aliases")


class AgentInfo(BaseModel):
    """Describes one debating agent (extra keys such as endpoint or adapter are kept)."""

    model_config = ConfigDict(extra="allow")

    name: str
    model: str | None = None


def default_agents() -> list[AgentInfo]:
    return [AgentInfo(name="A"), AgentInfo(name="B")]


class Tree(BaseModel):
    """A dialogue tree in the `pbt.tree/v1` format. Structure is checked on construction."""

    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    schema_version: Literal["pbt.tree/v1"] = Field(SCHEMA_VERSION, alias="schema")
    id: str = Field(min_length=1)
    question: Question
    agents: list[AgentInfo] = Field(default_factory=default_agents)
    config: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: dict[str, Any] | None = Field(
        None, description="format-specific data kept for lossless export (e.g. the reference's prompt root)"
    )
    nodes: dict[str, Node] = Field(default_factory=dict)

    # ---- (de)serialization of the node list -------------------------------------------------
    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes_from_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            out: dict[str, Any] = {}
            for i, item in enumerate(value):
                node_id = (
                    item.id if isinstance(item, Node) else item.get("id") if isinstance(item, dict) else None
                )
                if not isinstance(item, Node | dict):
                    raise StructureError(f"expected a node object, got {type(item).__name__}", f"nodes[{i}]")
                if node_id is None:
                    raise StructureError("missing field", f"nodes[{i}].id")
                if not isinstance(node_id, str):
                    raise StructureError(f"must be a string, got {node_id!r}", f"nodes[{i}].id")
                if node_id in out:
                    raise StructureError(f"duplicate node id {node_id!r}", f"nodes[{i}].id")
                out[node_id] = item
            return out
        return value

    @field_serializer("nodes")
    def _nodes_to_list(self, nodes: dict[str, Node]) -> list[dict[str, Any]]:
        return [n.model_dump(mode="json") for n in nodes.values()]

    @model_validator(mode="after")
    def _check_structure(self) -> Tree:
        check_structure(self)
        return self

    # ---- navigation -------------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise NotFoundError(f"tree {self.id!r} has no node {node_id!r}") from None

    def roots(self) -> list[Node]:
        """Nodes without a parent (normally exactly one: agent A's level-0 answer)."""
        return [n for n in self.nodes.values() if n.parent is None]

    def root(self) -> Node:
        for n in self.nodes.values():
            if n.parent is None:
                return n
        raise NotFoundError(f"tree {self.id!r} has no nodes")

    def children_of(self, node_id: str) -> list[Node]:
        return [self.nodes[c] for c in self.node(node_id).children]

    def parent_of(self, node_id: str) -> Node | None:
        parent = self.node(node_id).parent
        return None if parent is None else self.nodes[parent]

    def siblings_of(self, node_id: str) -> list[Node]:
        """Other nodes with the same parent (depth-0 nodes are siblings of each other)."""
        parent = self.node(node_id).parent
        pool = self.roots() if parent is None else self.children_of(parent)
        return [n for n in pool if n.id != node_id]

    def level(self, depth: int) -> list[Node]:
        return [n for n in self.nodes.values() if n.depth == depth]

    def path_to(self, node_id: str) -> list[Node]:
        """The nodes from the level-0 root down to `node_id`, inclusive."""
        path = []
        current: str | None = node_id
        while current is not None:
            n = self.node(current)
            path.append(n)
            current = n.parent
        path.reverse()
        return path

    def leaves(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.children]

    def walk(self) -> Iterator[Node]:
        """Depth-first pre-order from the roots, children in their stored order."""
        stack = list(reversed(self.roots()))
        while stack:
            n = stack.pop()
            yield n
            stack.extend(self.nodes[c] for c in reversed(n.children))

    @property
    def max_depth(self) -> int:
        return max((n.depth for n in self.nodes.values()), default=-1)

    # ---- building ---------------------------------------------------------------------------
    def new_id(self) -> str:
        """The smallest non-negative integer id not in use, as a string."""
        i = len(self.nodes)
        while str(i) in self.nodes:
            i += 1
        return str(i)

    def add_node(
        self,
        *,
        parent: str | None,
        agent: int,
        text: str = "",
        answers: list[str | None] | None = None,
        persona: str | None = None,
        node_id: str | None = None,
        confidence: list[float | None] | None = None,
        usage: Usage | dict[str, int] | None = None,
        messages: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Node:
        """Append a node under `parent` (None for the level-0 root), keeping the tree consistent.

        Depth is derived from the parent; the new id is appended to the parent's children.
        """
        node_id = node_id if node_id is not None else self.new_id()
        if node_id in self.nodes:
            raise StructureError(f"duplicate node id {node_id!r}", f"nodes[id={node_id}].id")
        if parent is not None and parent not in self.nodes:
            raise StructureError(f"parent {parent!r} does not exist", f"nodes[id={node_id}].parent")
        depth = 0 if parent is None else self.nodes[parent].depth + 1
        node = Node(
            id=node_id,
            parent=parent,
            depth=depth,
            agent=agent,
            persona=persona,
            text=text,
            answers=list(answers) if answers is not None else [None, None],
            confidence=confidence,
            usage=Usage.model_validate(usage) if isinstance(usage, dict) else usage,
            messages=messages,
            extra=dict(extra or {}),
        )
        self.nodes[node_id] = node
        if parent is not None:
            self.nodes[parent].children.append(node_id)
        return node

    # ---- conversion -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of the `pbt.tree/v1` format (keys in the documented order)."""
        return self.model_dump(mode="json", by_alias=True)


def check_structure(tree: Tree) -> None:
    """Raise `StructureError` unless the nodes form a forest rooted at depth-0 nodes.

    Checks: dict key equals node id; parents exist; parent/children links agree both ways;
    no duplicate children; depth = parent's depth + 1 (0 for roots); no cycles. O(nodes).
    """
    nodes = tree.nodes
    # pass 1: ids and parent references (so a dangling parent is reported as such)
    for key, n in nodes.items():
        where = f"nodes[id={key}]"
        if n.id != key:
            raise StructureError(f"node stored under key {key!r} has id {n.id!r}", f"{where}.id")
        if n.parent is None:
            if n.depth != 0:
                raise StructureError(
                    f"a node without parent must have depth 0, got {n.depth}", f"{where}.depth"
                )
        elif n.parent == n.id:
            raise StructureError("node is its own parent (cycle)", f"{where}.parent")
        elif n.parent not in nodes:
            raise StructureError(f"dangling parent id {n.parent!r} (no such node)", f"{where}.parent")
    # pass 2: parent and children links agree both ways
    for key, n in nodes.items():
        where = f"nodes[id={key}]"
        if n.parent is not None and n.id not in nodes[n.parent].children:
            raise StructureError(
                f"parent {n.parent!r} does not list {n.id!r} among its children", f"{where}.parent"
            )
        seen: set[str] = set()
        for child_id in n.children:
            if child_id in seen:
                raise StructureError(f"child {child_id!r} listed twice", f"{where}.children")
            seen.add(child_id)
            child = nodes.get(child_id)
            if child is None:
                raise StructureError(f"dangling child id {child_id!r} (no such node)", f"{where}.children")
            if child.parent != n.id:
                raise StructureError(
                    f"child {child_id!r} names {child.parent!r} as its parent, not {n.id!r}",
                    f"{where}.children",
                )
    # depth consistency and cycles: walk from the roots; every node must be reached exactly once
    reached = 0
    stack = [n for n in nodes.values() if n.parent is None]
    visited: set[str] = set()
    while stack:
        n = stack.pop()
        if n.id in visited:  # pragma: no cover - excluded by the parent/children checks above
            raise StructureError("node reached twice (cycle)", f"nodes[id={n.id}]")
        visited.add(n.id)
        reached += 1
        for child_id in n.children:
            child = nodes[child_id]
            if child.depth != n.depth + 1:
                raise StructureError(
                    f"depth {child.depth} but parent {n.id!r} has depth {n.depth} (expected {n.depth + 1})",
                    f"nodes[id={child_id}].depth",
                )
            stack.append(child)
    if reached != len(nodes):
        unreached = next(k for k in nodes if k not in visited)
        raise StructureError(
            "node is not reachable from a root: its ancestors form a cycle", f"nodes[id={unreached}].parent"
        )
