"""Balanced persuasion accuracy on the dev pairs at every evaluation (PBT-METHOD.md §6c).

When an extractor is configured (``extractor: rule`` or a backend spec such as
``http://extractor:8080/v1``), each evaluation also lets the model answer every dev pair's
prompt (greedy), extracts the final answer (`pbt.extract.factory.make_extractor`,
with the gold aliases and the answers given in the dialogue as candidates, as the evaluator's
balanced suite does), judges it against the pair's gold aliases with the evaluation normalizer
(`pbt.answers.is_correct_eval`) and adds ``eval_balanced_accuracy`` (the mean of the resist
(+→-) and accept (-→+) accuracies), ``eval_balanced_resist`` and ``eval_balanced_accept`` to the
evaluation metrics, where model selection (``select_by: balanced_accuracy``) reads it. Under DDP
every process answers its share of the pairs and the results are gathered.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

from pbt.errors import ValidationError
from pbt.prefs.record import parse_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DevItem:
    code: str
    prompt: list[dict[str, str]]
    question: str
    aliases: tuple[str, ...]


def dev_items(rows: list[dict[str, Any]], where: str) -> list[DevItem]:
    """Dev pairs with question and gold aliases (`pbt.prefs.record.PairRecord` ``question`` and ``gold``)."""
    items = []
    for row in rows:
        record = parse_record(row, where)
        if not record.gold:
            raise ValidationError(
                "balanced-accuracy selection needs gold aliases ('gold') in every dev pair; "
                f"pair {record.name} has none. Regenerate the pairs with 'pbt prefs' or leave 'extractor' unset",
                field="extractor",
                location=where,
            )
        prompt = [m.model_dump() for m in record.prompt]
        question = record.question or next((m["content"] for m in prompt if m["role"] == "user"), "")
        items.append(DevItem(str(record.code), prompt, question, tuple(record.gold)))
    return items


def make_extractor(spec: str, model: str | None = None) -> Any:
    """``rule`` -> the rule extractor; anything else is a backend spec for the model extractor."""
    from pbt.backends import make_backend
    from pbt.extract.factory import make_extractor as pick

    return pick("rule" if spec == "rule" else "llm", lambda: make_backend(spec, model=model))


def generate(
    model: Any, tokenizer: Any, prompts: list[list[dict]], max_new_tokens: int, batch_size: int
) -> list[str]:
    """Greedy replies of ``model`` to chat prompts (left-padded batches)."""
    import torch

    was_training = model.training
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    model.eval()
    replies: list[str] = []
    try:
        for i in range(0, len(prompts), batch_size):
            texts = [
                tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                for p in prompts[i : i + batch_size]
            ]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
                model.device
            )
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    use_cache=True,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = out[:, enc["input_ids"].shape[1] :]
            replies += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
        if was_training:
            model.train()
    return replies


def _candidates(item: DevItem) -> list[str]:
    from pbt.answers import find_final_answer, parse_final_answer

    said = [find_final_answer(m["content"]) for m in item.prompt]
    return [*item.aliases, *(parse_final_answer(f"Final Answer: {a}") for a in said if a)]


async def _extract(spec: str, model: str | None, items: list[DevItem], replies: list[str]) -> list[str]:
    extractor = make_extractor(spec, model)
    try:
        jobs = [
            extractor.extract(it.question, r, _candidates(it)) for it, r in zip(items, replies, strict=True)
        ]
        return list(await asyncio.gather(*jobs))
    finally:
        backend = getattr(extractor, "backend", None)
        if backend is not None:
            await backend.aclose()


def balanced_scores(items: list[DevItem], correct: list[bool]) -> dict[str, float]:
    acc = {}
    for code in ("resist", "accept"):
        marks = [c for it, c in zip(items, correct, strict=True) if it.code == code]
        acc[code] = sum(marks) / len(marks) if marks else math.nan
    known = [v for v in acc.values() if not math.isnan(v)]
    overall = sum(known) / len(known) if known else math.nan
    return {"balanced_accuracy": overall, "balanced_resist": acc["resist"], "balanced_accept": acc["accept"]}


class BalancedAccuracyCallback(TrainerCallback):
    """Adds balanced persuasion accuracy on the dev pairs to every dev evaluation."""

    def __init__(
        self,
        items: list[DevItem],
        tokenizer: Any,
        extractor: str,
        extractor_model: str | None = None,
        max_new_tokens: int = 80,
        batch_size: int = 8,
    ):
        self.items = items
        self.tokenizer = tokenizer
        self.extractor = extractor
        self.extractor_model = extractor_model
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.history: list[dict[str, Any]] = []

    def score(self, model: Any, rank: int = 0, world: int = 1) -> dict[str, float]:
        from pbt.answers import is_correct_eval

        mine = list(range(rank, len(self.items), world))
        items = [self.items[i] for i in mine]
        replies = generate(
            model, self.tokenizer, [it.prompt for it in items], self.max_new_tokens, self.batch_size
        )
        answers = asyncio.run(_extract(self.extractor, self.extractor_model, items, replies))
        local = [(i, is_correct_eval(a, it.aliases)) for i, it, a in zip(mine, items, answers, strict=True)]
        if world > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, local)
            local = [x for part in gathered for x in part]
        correct = dict(local)
        return balanced_scores(self.items, [correct[i] for i in range(len(self.items))])

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if metrics is None or "eval_loss" not in metrics or model is None:
            return control  # not a dev evaluation (e.g. the final pass over the training pairs)
        scores = self.score(model, args.process_index, args.world_size)
        metrics.update({f"eval_{k}": v for k, v in scores.items()})
        entry = {"step": state.global_step, **{f"eval_{k}": v for k, v in scores.items()}}
        self.history.append(entry)
        state.log_history.append(entry)
        if state.is_world_process_zero:
            log.info(
                "step %d: balanced accuracy %.3f (resist %.3f, accept %.3f)",
                state.global_step,
                scores["balanced_accuracy"],
                scores["balanced_resist"],
                scores["balanced_accept"],
            )
        return control
