"""Preference pairs from one dialogue tree (PBT-METHOD.md §3-§4), exactly the reference rule.

Steps, each a function so that tests and tools can look at the intermediate values:

1. `resolve_disagree`: a ``Disagree`` answer of agent k at node N becomes agent k's answer at N's
   grandparent (resolved the same way). At depth 0 it stays; at depth 1 it becomes missing.
2. `is_all_agree`: drop the tree when every node below level 0 agrees (§2 stopping rule).
3. `node_correctness` (§3 rule per node) and `subtree_scores` (children-first sums; a node that
   cannot be scored keeps its children's sum and passes nothing up).
4. `sibling_pairs`: same parent, equal child counts, both scorable, not both fully correct,
   different scores, larger > 0 and (larger - smaller) / larger > 0.5; higher score is chosen.
   `compare_siblings` gives every comparison with the rule that skipped it (`SKIP_REASONS`), for
   tools that show why a pair was not made (``pbt view``); `sibling_pairs` is its kept part.
5. `label_pair`: ``resist`` / ``accept`` / None, judging agent k by its own answers (the
   documented decision of §4.4; the reference indexes the wrong slot).

All lookups are by id in dicts, so the cost is linear in the number of nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from pbt.answers import is_disagree, node_agrees, prepare_aliases, score_answers
from pbt.tree.model import Tree

Code = Literal["resist", "accept"]
Answers = tuple[str | None, str | None]
Correctness = tuple[bool, bool] | None
CODES: tuple[str, ...] = ("resist", "accept")


@dataclass(frozen=True)
class Pair:
    """A kept sibling comparison. `parent` is the persuasion turn Q (None at level 0)."""

    tree_id: str
    parent: str | None
    chosen: str
    rejected: str
    chosen_score: int
    rejected_score: int
    agent: int
    code: Code | None = None


class PairFilterLike(Protocol):
    """What `analyze_tree` asks of a pair filter (`pbt.prefs.filters` implements it)."""

    def reannotate(self, tree: Tree, resolved: Mapping[str, Answers]) -> Mapping[str, Answers]: ...

    def confirm(self, tree: Tree, pair: Pair) -> bool: ...


@dataclass
class TreeAnalysis:
    """Everything the engine computed for one tree."""

    tree_id: str
    resolved: dict[str, Answers]
    dropped_all_agree: bool
    correctness: dict[str, Correctness] = field(default_factory=dict)
    scores: dict[str, int] = field(default_factory=dict)
    pairs: list[Pair] = field(default_factory=list)
    #: every sibling comparison with its outcome (`compare_siblings`), kept or skipped
    comparisons: list[SiblingComparison] = field(default_factory=list)
    #: labelled pairs that the §4.5 pair filter dropped (not in `pairs`)
    filtered: list[Pair] = field(default_factory=list)


def resolve_disagree(tree: Tree) -> dict[str, Answers]:
    """Answers of every node with ``Disagree`` replaced by the agent's own previous answer."""
    resolved: dict[str, Answers] = {}
    for node in tree.walk():  # pre-order: a grandparent is always resolved before its grandchildren
        a, b = node.answers
        if is_disagree(a) or is_disagree(b):
            if node.parent is None:
                resolved[node.id] = (a, b)
                continue
            grandparent = tree.nodes[node.parent].parent
            previous: Answers = (None, None) if grandparent is None else resolved[grandparent]
            a = previous[0] if is_disagree(a) else a
            b = previous[1] if is_disagree(b) else b
        resolved[node.id] = (a, b)
    return resolved


def is_all_agree(tree: Tree, resolved: Mapping[str, Answers]) -> bool:
    """True when every node below level 0 agrees (also when there is none): nothing to learn."""
    return all(node_agrees(resolved[n.id]) for n in tree.nodes.values() if n.depth > 0)


def node_correctness(tree: Tree, resolved: Mapping[str, Answers]) -> dict[str, Correctness]:
    """Per node: (A correct, B correct) under the §3 rule, or None when it cannot be scored."""
    aliases = prepare_aliases(tree.question.gold)
    return {node_id: score_answers(answers, aliases) for node_id, answers in resolved.items()}


def subtree_scores(tree: Tree, correctness: Mapping[str, Correctness]) -> dict[str, int]:
    """Children-first sums of correct answers (§4.2)."""
    scores = dict.fromkeys(tree.nodes, 0)
    for node in reversed(list(tree.walk())):  # reversed pre-order: children before parents
        correct = correctness[node.id]
        if correct is None:
            continue
        scores[node.id] += int(correct[0]) + int(correct[1])
        if node.parent is not None:
            scores[node.parent] += scores[node.id]
    return scores


#: why a sibling comparison kept no pair (§4.3), in the order the rules are checked
SKIP_REASONS: dict[str, str] = {
    "unequal_children": "their child counts differ",
    "unscorable": "one of them cannot be scored (an answer is missing)",
    "both_correct": "both have both answers correct",
    "zero_scores": "both subtree scores are 0",
    "equal_scores": "their subtree scores are equal",
    "below_margin": "the score gap is not above the 0.5 margin: (larger - smaller) / larger <= 0.5",
}


@dataclass(frozen=True)
class SiblingComparison:
    """One comparison of two siblings (§4.3): the pair it kept, or the rule that skipped it.

    `reason` is None for a kept pair, else a key of `SKIP_REASONS`. `left` / `right` are in tree
    order; `pair` (unlabelled) names the chosen and rejected sibling."""

    parent: str | None
    left: str
    right: str
    left_score: int
    right_score: int
    reason: str | None
    pair: Pair | None = None


def sibling_groups(tree: Tree) -> list[tuple[str | None, list[str]]]:
    """(parent, sibling ids) of every group of two or more siblings, roots first, in tree order."""
    groups: list[tuple[str | None, list[str]]] = [(None, [n.id for n in tree.roots()])]
    groups.extend((n.id, n.children) for n in tree.walk() if len(n.children) > 1)
    return [(p, c) for p, c in groups if len(c) > 1]


def compare_siblings(
    tree: Tree, correctness: Mapping[str, Correctness], scores: Mapping[str, int]
) -> list[SiblingComparison]:
    """Every sibling comparison of §4.3 with its outcome, each unordered pair once, in tree order."""
    out: list[SiblingComparison] = []
    for parent, children in sibling_groups(tree):
        for i, left in enumerate(children):
            for right in children[i + 1 :]:
                out.append(_compare(tree, parent, left, right, correctness, scores))
    return out


def sibling_pairs(
    tree: Tree, correctness: Mapping[str, Correctness], scores: Mapping[str, int]
) -> list[Pair]:
    """Every kept sibling comparison (§4.3), unlabelled, each pair once, in tree order."""
    return [c.pair for c in compare_siblings(tree, correctness, scores) if c.pair is not None]


def _compare(
    tree: Tree,
    parent: str | None,
    left: str,
    right: str,
    correctness: Mapping[str, Correctness],
    scores: Mapping[str, int],
) -> SiblingComparison:
    ls, rs = scores[left], scores[right]

    def skip(reason: str) -> SiblingComparison:
        return SiblingComparison(parent, left, right, ls, rs, reason)

    if len(tree.nodes[left].children) != len(tree.nodes[right].children):
        return skip("unequal_children")
    lc, rc = correctness[left], correctness[right]
    if lc is None or rc is None:
        return skip("unscorable")
    if all(lc) and all(rc):
        return skip("both_correct")
    bigger, smaller = max(ls, rs), min(ls, rs)
    if bigger == 0:  # (scores are >= 0: both are 0, so also equal; the more telling reason)
        return skip("zero_scores")
    if bigger == smaller:
        return skip("equal_scores")
    if not 2 * (bigger - smaller) > bigger:  # (bigger - smaller) / bigger > 0.5, in integers
        return skip("below_margin")
    chosen, rejected = (left, right) if ls > rs else (right, left)
    pair = Pair(tree.id, parent, chosen, rejected, bigger, smaller, tree.nodes[chosen].agent)
    return SiblingComparison(parent, left, right, ls, rs, None, pair)


def label_pair(
    tree: Tree, resolved: Mapping[str, Answers], correctness: Mapping[str, Correctness], pair: Pair
) -> Code | None:
    """``resist``, ``accept`` or None for a pair (§4.4), judging agent k by its own answers."""
    chosen, rejected = tree.nodes[pair.chosen], tree.nodes[pair.rejected]
    q_id = chosen.parent
    if q_id is None:
        return None
    g_id = tree.nodes[q_id].parent
    if g_id is None:
        return None
    qc, pc, dc, gc = correctness[q_id], correctness[chosen.id], correctness[rejected.id], correctness[g_id]
    if qc is None or pc is None or dc is None or gc is None:
        return None
    k = chosen.agent
    if resolved[g_id][k] is None:  # (implied by gc not None; kept to mirror §4.4)
        return None
    was_correct, correct_at_p, correct_at_d = gc[k], pc[k], dc[rejected.agent]
    q_sum, p_sum = sum(qc), sum(pc)
    if q_sum == p_sum and was_correct and correct_at_p and not correct_at_d:
        return "resist"
    if q_sum < p_sum and not was_correct and correct_at_p and not correct_at_d:
        return "accept"
    return None


def analyze_tree(tree: Tree, pair_filter: PairFilterLike | None = None) -> TreeAnalysis:
    """Run §4.1-§4.5 on one tree: resolve, drop, score, compare siblings, label, filter."""
    resolved = resolve_disagree(tree)
    if is_all_agree(tree, resolved):
        return TreeAnalysis(tree.id, resolved, dropped_all_agree=True)
    if pair_filter is not None:
        resolved = dict(pair_filter.reannotate(tree, resolved))
    correctness = node_correctness(tree, resolved)
    scores = subtree_scores(tree, correctness)
    comparisons = compare_siblings(tree, correctness, scores)
    pairs, filtered = [], []
    for pair in (c.pair for c in comparisons if c.pair is not None):
        code = label_pair(tree, resolved, correctness, pair)
        labelled = replace(pair, code=code)
        if pair_filter is not None and not pair_filter.confirm(tree, labelled):
            filtered.append(labelled)
            continue
        pairs.append(labelled)
    return TreeAnalysis(tree.id, resolved, False, correctness, scores, pairs, comparisons, filtered)
