"""Optional model-based filtering of preference pairs (PBT-METHOD.md §4.5).

The engine calls a *pair filter* twice: `reannotate` may rewrite the resolved answers of a tree
before scoring (the reference re-decides with an LLM whether two answers agree), and `confirm`
may drop a labelled pair (the reference checks that the chosen response really agrees for
``accept`` / disagrees for ``resist``, and the rejected one the opposite).

`ModelFilter` implements the reference's filtering on top of any `AgreementJudge`; the LLM judge
itself (prompts, log-probabilities of "agree"/"disagree") belongs to the generation backends.
`make_pair_filter` builds a filter by name for the CLI and the orchestrator API: ``none`` (no
filtering), ``rules`` (`ModelFilter` with the offline `pbt.extract.judge.RuleAgreementJudge`) or
``judge`` (`ModelFilter` with `pbt.extract.judge.LLMAgreementJudge` on a judge agent's backend: the
paper's model-based filter, Llama-3-8B-Instruct there).

Splits: as in the reference (its dev and test sets are always built with ``model_filtering=True``,
the train set only when asked), the dev and test splits have their own filter, ``auto`` by
default: the train split's filter when there is one, else ``judge`` when a judge agent is
configured, else ``rules`` (`resolve_eval_filter`). So dev and test are filtered by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pbt.answers import prepare_aliases, score_answers
from pbt.errors import ValidationError

if TYPE_CHECKING:
    from pbt.backends.base import ChatBackend
    from pbt.prefs.engine import Answers, Pair, PairFilterLike
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
PAIR_FILTERS = ("none", "rules", "judge")
#: the dev/test filter's names (``pbt prefs --eval-filter``, ExtractPreferencesRequest.eval_pair_filter)
EVAL_PAIR_FILTERS = ("auto", *PAIR_FILTERS)


def resolve_eval_filter(train: str | None, eval_name: str | None, *, has_judge: bool = False) -> str:
    """The dev/test filter's name: `eval_name`, or for ``auto`` (None, ``""``) the train filter when it
    filters, else ``judge`` when a judge agent is configured, else ``rules``."""
    if eval_name and eval_name != "auto":
        return eval_name
    if train and train != "none":
        return train
    return "judge" if has_judge else "rules"


def make_pair_filter(
    name: str | None, *, field: str = "filter", judge: ChatBackend | None = None, judge_field: str = "judge"
) -> PairFilterLike | None:
    """The pair filter called `name` (None or ``""`` means ``none``); unknown names raise
    `ValidationError` naming `field`. ``judge`` needs the judge agent's backend `judge` (built by the
    caller through the backend factory, after the request policy for a server)."""
    if not name or name == "none":
        return None
    if name == "rules":
        from pbt.extract.judge import RuleAgreementJudge

        return ModelFilter(RuleAgreementJudge())
    if name == "judge":
        if judge is None:
            raise ValidationError(
                "the judge filter needs a judge agent (an OpenAI-compatible endpoint and model)",
                field=judge_field,
            )
        from pbt.extract.judge import LLMAgreementJudge

        return ModelFilter(LLMAgreementJudge(judge))
    raise ValidationError(f"unknown pair filter {name!r}; expected one of {list(PAIR_FILTERS)}", field=field)
