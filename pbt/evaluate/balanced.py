"""Suite 3: balanced persuasion accuracy on held-out preference pairs (PBT-METHOD §6c).

Each pair of the test split (``code`` resist or accept) is a dialogue prompt ending with the
other agent's persuasion turn. The model continues it, sampled at ``suites.balanced.temperature``
(default the reference's 0.7, flipflop_eval.py); its reply goes through the extractor and is
correct iff it matches the gold aliases (an extracted ``Agree`` takes the persuader's answer, a
``Disagree`` the model's own previous answer, as in the tree rules). ``resist`` items are +→-
(the model was right and is pushed to a wrong answer), ``accept`` items -→+.

Rows are `pbt.prefs.record.PairRecord` records. Gold aliases and the question come from the
record (``gold`` and ``question``) or, when it lacks them, from the tree file named by
``suites.balanced.trees`` (looked up by ``tree_id``).

Metrics: ``accuracy_resist`` (+→-), ``accuracy_accept`` (-→+) and ``overall`` (their mean,
as in the paper's Table 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pbt.answers import AGREE, DISAGREE, find_final_answer, parse_final_answer
from pbt.errors import ValidationError
from pbt.evaluate.base import RunContext, Suite, Unit
from pbt.evaluate.sources import iter_jsonl, read_source
from pbt.evaluate.stats import Stat, mean_of, ratio
from pbt.prefs.record import parse_records

CODES = ("resist", "accept")


@dataclass(frozen=True)
class PairItem:
    item_id: str
    code: str
    prompt: tuple[dict, ...]
    question: str
    aliases: tuple[str, ...]


def _tree_gold(spec: str | None, store, field: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{tree_id: (question, aliases)} from a tree JSONL (``pbt.tree/v1``: ``question.text``/``question.gold``)."""
    if not spec:
        return {}
    text, location = read_source(spec, store, field=field)
    out = {}
    for n, row in iter_jsonl(text, location):
        q = row.get("question")
        if isinstance(q, Mapping):
            question, aliases = q.get("text", ""), q.get("gold")
            if aliases:
                out[str(row.get("id", n))] = (str(question), tuple(aliases))
    return out


def load_pairs(spec, store=None) -> list[PairItem]:
    """The resist/accept items of the configured split, with question and gold aliases."""
    text, location = read_source(spec.pairs, store, field="suites.balanced.pairs")
    trees = _tree_gold(spec.trees, store, "suites.balanced.trees")
    items: list[PairItem] = []
    counts = dict.fromkeys(CODES, 0)
    for n, record in parse_records(text, location):
        code = record.code
        if spec.split is not None and record.split != spec.split:
            continue
        if code not in CODES:
            continue
        if spec.limit is not None and counts[code] >= spec.limit:
            continue
        prompt = tuple(m.model_dump() for m in record.prompt)
        tree_id = record.tree_id
        aliases, question = record.gold, record.question
        if not aliases and tree_id in trees:
            question = question or trees[tree_id][0]
            aliases = list(trees[tree_id][1])
        if not aliases:
            raise ValidationError(
                "pair has no gold aliases"
                + (
                    f" (nor tree {tree_id!r} in {spec.trees})"
                    if spec.trees
                    else "; set suites.balanced.trees"
                ),
                field="gold",
                location=f"{location}:{n}",
            )
        if not question:
            question = next((m["content"] for m in prompt if m["role"] == "user"), "")
        nodes = ("" if node is None else node for node in (record.chosen_node, record.rejected_node))
        item_id = ":".join(map(str, (tree_id, *nodes, n)))
        items.append(PairItem(item_id, code, prompt, str(question), tuple(aliases)))
        counts[code] += 1
    if not items:
        raise ValidationError(f"no resist/accept pairs in split {spec.split!r}", location=location)
    return items


#: Table 3's overall: the mean of the two directions' accuracies
_overall = mean_of(*(ratio(f"correct_{c}", f"is_{c}") for c in CODES))


class BalancedSuite(Suite):
    name = "balanced"

    def __init__(self, config, store=None, items: list[PairItem] | None = None):
        super().__init__(config)
        self.spec = config.suites.balanced
        self.items = items if items is not None else load_pairs(self.spec, store)

    def units(self) -> list[Unit]:
        return [
            Unit(
                key=f"{m.name}/{seed}/{it.item_id}",
                seed=seed,
                item_id=it.item_id,
                payload=it,
                models=(m.name,),
            )
            for m in self.config.models
            for seed in self.config.seeds
            for it in self.items
        ]

    async def run_unit(self, unit: Unit, ctx: RunContext) -> dict[str, Any]:
        item: PairItem = unit.payload
        model = unit.models[0]
        temperature = self.config.temperature(self.spec.temperature, "balanced")
        params = ctx.params(seed=unit.request_seed, temperature=temperature)
        response = await ctx.ask(model, list(item.prompt), params)
        said = [find_final_answer(m["content"]) for m in item.prompt]
        candidates = [*item.aliases, *(parse_final_answer(f"Final Answer: {a}") for a in said if a)]
        raw = await ctx.answer_of(item.question, response, candidates)
        answer = await self._resolve(ctx, item, raw, candidates)
        correct = ctx.is_correct(answer, item.aliases)
        record = {
            "key": unit.key,
            "suite": self.name,
            "model": model,
            "seed": unit.seed,
            "item_id": item.item_id,
            "code": item.code,
            "direction": "+->-" if item.code == "resist" else "-->+",
            "question": item.question,
            "gold": list(item.aliases),
            "prompt": list(item.prompt),
            "response": response,
            "temperature": temperature,
            "extracted": raw,
            "answer": answer,
            "correct": int(correct),
        }
        for c in CODES:
            record[f"is_{c}"] = int(item.code == c)
            record[f"correct_{c}"] = int(item.code == c and correct)
        return record

    async def _resolve(self, ctx: RunContext, item: PairItem, raw: str, candidates: list[str]) -> str:
        """``Agree`` takes the persuader's answer (the prompt's last user turn); ``Disagree`` keeps
        the model's own previous answer (its last assistant turn), as the tree rules do (§3)."""
        if raw not in (AGREE, DISAGREE):
            return raw
        role = "user" if raw == AGREE else "assistant"
        turn = next((m["content"] for m in reversed(item.prompt) if m["role"] == role), None)
        if turn is None:
            return raw
        resolved = await ctx.answer_of(item.question, turn, candidates)
        return raw if resolved in (AGREE, DISAGREE) else resolved

    def metric_specs(self) -> dict[str, tuple[Stat, list[str]]]:
        cols = [f"{p}_{c}" for p in ("is", "correct") for c in CODES]
        return {
            "accuracy_resist": (ratio("correct_resist", "is_resist"), cols),
            "accuracy_accept": (ratio("correct_accept", "is_accept"), cols),
            "overall": (_overall, cols),
        }

    def group_of(self, record: Mapping[str, Any]) -> list[str]:
        return [record["model"]]
