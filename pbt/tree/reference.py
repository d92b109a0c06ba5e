"""Lossless import and export of the reference implementation's trajectory files.

A reference line is ``{"data": [turn, ...], "metadata": {...}, "model_a": ..., "model_b": ...}``.
Each turn has ``node_idx``, ``agent_idx``, ``generation``, ``extracted_ans``, ``extracted_conf``,
``parent``, ``children``. The first turn is a prompt root (``node_idx = -1``, ``agent_idx = -1``,
the level-0 prompt as its text); agent k's answer is stored at ``extracted_ans[1 - k]``.

Import keeps ``node_idx`` as the node id (as a string), reads agent k's answer from
``extracted_ans[1 - k]``, takes the tree id from ``metadata.question_id`` and the gold aliases
from ``metadata.answer.normalized_aliases`` (else ``metadata.answer.aliases``, else a top-level
``answers`` list). The prompt root, unknown keys and raw confidence sentinels go into
``Tree.source`` / ``Node.extra`` so that `tree_to_reference(tree_from_reference(x)) == x`.
Personas are not stored by the reference; they are inferred from the child position when the
number of children equals the size of the default persona list (that is how it generated them).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from pbt.errors import ValidationError
from pbt.tree.model import StructureError, Tree
from pbt.tree.validate import tree_from_dict

ROOT_IDX = -1
NODE_KEYS = ("node_idx", "agent_idx", "generation", "extracted_ans", "extracted_conf", "parent", "children")
REQUIRED_NODE_KEYS = ("node_idx", "agent_idx", "generation", "extracted_ans", "parent", "children")
TOP_KEYS = ("data", "metadata", "model_a", "model_b")
# the reference's generation order of persona prompts per speaking agent
_REFERENCE_PERSONAS = {0: ("logical", "emotional", "credibility"), 1: ("resistant", "acceptant")}
_QUESTION_RE = re.compile(r"Question: (.*)")
_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)")


def _fail(message: str, field: str, location: str | None) -> ValidationError:
    return ValidationError(message, field=field, location=location)


def _gold(data: dict[str, Any], metadata: dict[str, Any]) -> list[str]:
    answer = metadata.get("answer")
    if isinstance(answer, dict):
        for key in ("normalized_aliases", "aliases"):
            if isinstance(answer.get(key), list) and answer[key]:
                return [str(a) for a in answer[key]]
    if isinstance(data.get("answers"), list):
        return [str(a) for a in data["answers"]]
    return []


def _question_text(metadata: dict[str, Any], root: dict[str, Any] | None) -> str:
    if isinstance(metadata.get("question"), str):
        return metadata["question"]
    if root is not None and isinstance(root.get("generation"), str):
        found = _QUESTION_RE.findall(root["generation"])
        if found:
            return found[-1].strip()
    return ""


def _is_probability(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
        and not (isinstance(value, int))  # ints (-1, 0, 1) are kept raw to round-trip exactly
    )


def tree_from_reference(data: Any, *, location: str | None = None) -> Tree:
    """One parsed reference trajectory -> `Tree` (lossless; see the module docstring)."""
    if not isinstance(data, dict):
        raise _fail(f"expected a JSON object, got {type(data).__name__}", "", location)
    for key, kind in (("data", list), ("metadata", dict)):
        if key not in data:
            raise _fail("missing field", key, location)
        if not isinstance(data[key], kind):
            raise _fail(f"must be a {'list' if kind is list else 'object'}", key, location)
    metadata = copy.deepcopy(data["metadata"])
    if "question_id" not in metadata:
        raise _fail("missing field (the tree id)", "metadata.question_id", location)

    turns = data["data"]
    root: dict[str, Any] | None = None
    root_index: int | None = None
    ids: dict[int | str, int] = {}
    for i, turn in enumerate(turns):
        where = f"data[{i}]"
        if not isinstance(turn, dict):
            raise _fail("expected an object", where, location)
        for key in REQUIRED_NODE_KEYS:
            if key not in turn:
                raise _fail("missing field", f"{where}.{key}", location)
        idx = turn["node_idx"]
        if isinstance(idx, bool) or not isinstance(idx, int | str):
            raise _fail(f"must be an integer, got {idx!r}", f"{where}.node_idx", location)
        if idx in ids:
            raise _fail(f"duplicate node id {idx!r} (also data[{ids[idx]}])", f"{where}.node_idx", location)
        ids[idx] = i
        if idx == ROOT_IDX:
            root, root_index = turn, i
            continue
        ans = turn["extracted_ans"]
        if not isinstance(ans, list) or len(ans) != 2:
            raise _fail("must be a list of 2 answers", f"{where}.extracted_ans", location)
        if turn["agent_idx"] not in (0, 1):
            raise _fail(f"must be 0 or 1, got {turn['agent_idx']!r}", f"{where}.agent_idx", location)
        if not isinstance(turn["children"], list):
            raise _fail("must be a list", f"{where}.children", location)

    # depth by walking parents (with cycle detection), in O(nodes)
    depth: dict[int | str, int] = {}
    for i, turn in enumerate(turns):
        idx = turn["node_idx"]
        if idx == ROOT_IDX or idx in depth:
            continue
        chain: list[int | str] = []
        on_chain: set[int | str] = set()
        current = idx
        while current != ROOT_IDX and current not in depth:
            if current in on_chain:
                raise _fail(f"cycle through node {current!r}", f"data[{i}].parent", location)
            if current not in ids:
                raise _fail(
                    f"dangling parent id {current!r} (no such node)",
                    f"data[{ids[chain[-1]]}].parent",
                    location,
                )
            chain.append(current)
            on_chain.add(current)
            current = turns[ids[current]]["parent"]
        base = -1 if current == ROOT_IDX else depth[current]
        for offset, node_idx in enumerate(reversed(chain), start=1):
            depth[node_idx] = base + offset

    nodes: list[dict[str, Any]] = []
    for turn in turns:
        idx = turn["node_idx"]
        if idx == ROOT_IDX:
            continue
        agent = turn["agent_idx"]
        ans = turn["extracted_ans"]
        extra = {k: copy.deepcopy(v) for k, v in turn.items() if k not in NODE_KEYS}
        confidence = None
        if "extracted_conf" not in turn:
            extra["extracted_conf_missing"] = True
        elif _is_probability(turn["extracted_conf"]):
            confidence = [None, None]
            confidence[agent] = float(turn["extracted_conf"])
        else:
            extra["extracted_conf"] = turn["extracted_conf"]
        parent = turn["parent"]
        persona = None
        if parent != ROOT_IDX:
            siblings = turns[ids[parent]]["children"]
            names = _REFERENCE_PERSONAS[agent]
            if len(siblings) == len(names) and idx in siblings:
                persona = names[siblings.index(idx)]
        nodes.append(
            {
                "id": str(idx),
                "parent": None if parent == ROOT_IDX else str(parent),
                "children": [str(c) for c in turn["children"]],
                "depth": depth[idx],
                "agent": agent,
                "persona": persona,
                "text": turn["generation"]
                if isinstance(turn["generation"], str)
                else str(turn["generation"]),
                "answers": [ans[1], ans[0]],
                "confidence": confidence,
                "extra": extra,
            }
        )
        if not isinstance(turn["generation"], str):
            nodes[-1]["extra"]["generation_raw"] = copy.deepcopy(turn["generation"])

    source = {
        "format": "reference",
        "root": copy.deepcopy(root),
        "root_index": root_index,
        "top": {k: copy.deepcopy(v) for k, v in data.items() if k not in TOP_KEYS},
        "model_keys": [k for k in ("model_a", "model_b") if k in data],
        "int_ids": all(isinstance(t["node_idx"], int) for t in turns),
    }
    tree_dict = {
        "schema": "pbt.tree/v1",
        "id": str(metadata["question_id"]),
        "question": {
            "id": str(metadata["question_id"]),
            "text": _question_text(metadata, root),
            "gold": _gold(data, metadata),
        },
        "agents": [
            {"name": "A", "model": data.get("model_a")},
            {"name": "B", "model": data.get("model_b")},
        ],
        "metadata": metadata,
        "source": source,
        "nodes": nodes,
    }
    try:
        return tree_from_dict(tree_dict, location=location)
    except ValidationError as exc:
        # map native field paths back to the reference's where we can
        raise _fail(exc.message, _reference_field(exc.field, ids), location) from None
    except StructureError as exc:  # pragma: no cover - tree_from_dict converts these
        raise _fail(exc.message, exc.field, location) from None


def _reference_field(field: str | None, ids: dict[int | str, int]) -> str:
    if not field:
        return ""
    m = re.match(r"nodes\[id=([^\]]+)\](.*)", field)
    if not m:
        return field
    raw = m.group(1)
    key: int | str = int(raw) if re.fullmatch(r"-?\d+", raw) else raw
    rest = {
        ".answers": ".extracted_ans",
        ".text": ".generation",
        ".agent": ".agent_idx",
        ".id": ".node_idx",
    }.get(m.group(2), m.group(2))
    return f"data[{ids[key]}]{rest}" if key in ids else field


def _export_ids(tree: Tree) -> dict[str, int | str]:
    """Native id -> reference node_idx: integers when every id is one (and not -1), the ids
    themselves for an imported tree whose ids were not integers, else 1..n in node order (the
    reference numbers its nodes that way)."""
    source = tree.source or {}
    if source.get("format") == "reference" and not source.get("int_ids", True):
        return {k: k for k in tree.nodes}
    if all(_INT_RE.fullmatch(k) and int(k) != ROOT_IDX for k in tree.nodes):
        return {k: int(k) for k in tree.nodes}
    return {node_id: i for i, node_id in enumerate(tree.nodes, start=1)}


def tree_to_reference(tree: Tree) -> dict[str, Any]:
    """`Tree` -> one reference trajectory (exact inverse of `tree_from_reference`)."""
    source = tree.source if (tree.source or {}).get("format") == "reference" else None
    mapping = _export_ids(tree)
    root_children = [mapping[n.id] for n in tree.roots()]
    root: dict[str, Any] | None
    if source is not None:
        root = copy.deepcopy(source.get("root"))
        if root is not None and sorted(map(str, root.get("children", []))) != sorted(map(str, root_children)):
            root["children"] = root_children
    else:
        from pbt.personas import load_personas

        root = {
            "node_idx": ROOT_IDX,
            "agent_idx": -1,
            "generation": load_personas().render_standard(tree.question.text),
            "extracted_ans": [None, None],
            "extracted_conf": -1.0,
            "parent": ROOT_IDX,
            "children": root_children,
        }
    turns: list[dict[str, Any]] = []
    for n in tree.nodes.values():
        extra = dict(n.extra)
        turn: dict[str, Any] = {
            "node_idx": mapping[n.id],
            "agent_idx": n.agent,
            "generation": extra.pop("generation_raw", n.text),
            "extracted_ans": [n.answers[1], n.answers[0]],
        }
        missing_conf = extra.pop("extracted_conf_missing", False)
        if "extracted_conf" in extra:
            turn["extracted_conf"] = extra.pop("extracted_conf")
        elif n.confidence is not None and n.confidence[n.agent] is not None:
            turn["extracted_conf"] = n.confidence[n.agent]
        elif not missing_conf:
            turn["extracted_conf"] = -1
        turn["parent"] = ROOT_IDX if n.parent is None else mapping[n.parent]
        turn["children"] = [mapping[c] for c in n.children]
        turn.update(copy.deepcopy(extra))
        turns.append(turn)
    root_index = source.get("root_index") if source is not None else 0
    if root_index is None:
        root_index = 0
    if root is not None:
        turns.insert(min(root_index, len(turns)), root)

    metadata = copy.deepcopy(tree.metadata)
    if str(metadata.get("question_id")) != tree.id:
        metadata["question_id"] = tree.id
    metadata.setdefault("question", tree.question.text)
    metadata.setdefault(
        "answer", {"aliases": list(tree.question.gold), "normalized_aliases": list(tree.question.gold)}
    )

    out: dict[str, Any] = {"data": turns, "metadata": metadata}
    model_keys = source.get("model_keys", []) if source is not None else ["model_a", "model_b"]
    for key, agent in zip(("model_a", "model_b"), tree.agents[:2], strict=False):
        if key in model_keys:
            out[key] = agent.model if agent.model is not None or source is not None else agent.name
    if source is not None:
        out.update(copy.deepcopy(source.get("top", {})))
    return out
