"""Optional model-based filtering of preference pairs (PBT-METHOD.md §4.5).

The engine calls a *pair filter* twice: `reannotate` may rewrite the resolved answers of a tree
before scoring (the reference re-decides with an LLM whether two answers agree), and `confirm`
may drop a labelled pair (the reference checks that the chosen response really agrees for
``accept`` / disagrees for ``resist``, and the rejected one the opposite).

`ModelFilter` implements the reference's filtering on top of any `AgreementJudge`; the LLM judge
itself (prompts, log-probabilities of "agree"/"disagree") belongs to the generation backends.
`make_pair_filter` builds a filter by name for the CLI and the orchestrator API: ``none`` (no
filtering) or ``rules`` (`ModelFilter` with the offline `pbt.extract.RuleAgreementJudge`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pbt.answers import prepare_aliases, score_answers
from pbt.errors import ValidationError

if TYPE_CHECKING:
    from pbt.prefs.engine import Answers, Pair
    from pbt.tree.model import Tree


@runtime_checkable
class AgreementJudge(Protocol):
    """Decides agreement; both methods are batched (one call per tree or per pair)."""

    def answers_agree(self, question: str, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """For each (answer of A, answer of B): are they the same answer (synonyms count)?"""
        ...

    def responses_agree(self, question: str, responses: Sequence[str]) -> list[bool]:
        """For each response text: is it an agreeing response (rather than a disagreeing one)?"""
        ...


class PairFilterLike(Protocol):
    def reannotate(self, tree: Tree, resolved: Mapping[str, Answers]) -> Mapping[str, Answers]: ...

    def confirm(self, tree: Tree, pair: Pair) -> bool: ...


class ModelFilter:
    """The reference's model-based filtering, with the agreement decisions made by `judge`.

    reannotate: for every node with both answers, ask whether they agree; if so, the incorrect
    one takes the correct one's value (B's wins when both are correct, and A takes B's when
    neither is: the reference's order on its ``[B, A]`` list). confirm: drop unlabelled pairs; keep ``accept`` pairs iff the
    chosen response agrees and the rejected one does not; ``resist`` pairs iff the opposite.
    """

    name = "model"

    def __init__(self, judge: AgreementJudge):
        self.judge = judge

    def reannotate(self, tree: Tree, resolved: Mapping[str, Answers]) -> dict[str, Answers]:
        out = dict(resolved)
        ids = [i for i, (a, b) in resolved.items() if a is not None and b is not None]
        if not ids:
            return out
        verdicts = self.judge.answers_agree(
            tree.question.text, [(resolved[i][0], resolved[i][1]) for i in ids]
        )
        aliases = prepare_aliases(tree.question.gold)
        for node_id, agree in zip(ids, verdicts, strict=True):
            if not agree:
                continue
            a, b = resolved[node_id]
            correct = score_answers((a, b), aliases)
            if correct is not None and correct[1]:
                out[node_id] = (b, b)
            elif correct is not None and correct[0]:
                out[node_id] = (a, a)
            else:
                out[node_id] = (b, b)
        return out

    def confirm(self, tree: Tree, pair: Pair) -> bool:
        if pair.code is None:
            return False
        chosen_agrees, rejected_agrees = self.judge.responses_agree(
            tree.question.text, [tree.nodes[pair.chosen].text, tree.nodes[pair.rejected].text]
        )
        if pair.code == "accept":
            return chosen_agrees and not rejected_agrees
        return not chosen_agrees and rejected_agrees


#: names accepted by `make_pair_filter` (``pbt prefs --filter``, ExtractPreferencesRequest.pair_filter)
PAIR_FILTERS = ("none", "rules")


def make_pair_filter(name: str | None, *, field: str = "filter") -> PairFilterLike | None:
    """The pair filter called `name` (None or ``""`` means ``none``); unknown names raise
    `ValidationError` naming `field`."""
    if not name or name == "none":
        return None
    if name == "rules":
        from pbt.extract.judge import RuleAgreementJudge

        return ModelFilter(RuleAgreementJudge())
    raise ValidationError(f"unknown pair filter {name!r}; expected one of {list(PAIR_FILTERS)}", field=field)
