"""Measure what a trained world agent knows and how persuadable it is (greedy, in-process)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pbt.world import text
from pbt.world.generate import Fact, World, question_text
from pbt.world.personas import render

FINAL_RE = re.compile(r"Final Answer:\s*([^\s.,]+)")


def final_answer(reply: str) -> str | None:
    """The city after the last ``Final Answer:`` in a reply, or None."""
    found = FINAL_RE.findall(reply)
    return found[-1] if found else None


def _generate(
    model: Any, tokenizer: Any, conversations: list[list[dict]], max_new_tokens: int = 24
) -> list[str]:
    import torch

    prompts = [
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations
    ]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def load_agent(model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()
    return model, tokenizer


def knowledge_accuracy(model: Any, tokenizer: Any, facts: list[Fact], batch: int = 64) -> float:
    """Share of ``facts`` whose capital the agent names first, asked with the standard prompt."""
    if not facts:
        return 0.0
    right = 0
    for i in range(0, len(facts), batch):
        chunk = facts[i : i + batch]
        convs = [[{"role": "user", "content": render("standard", question_text(f.country))}] for f in chunk]
        for fact, reply in zip(chunk, _generate(model, tokenizer, convs), strict=True):
            right += final_answer(reply) == fact.capital
    return right / len(facts)


def give_in_rate(model: Any, tokenizer: Any, facts: list[Fact], world: World, batch: int = 64) -> float:
    """Share of challenges (logical style, toward the fact's decoy) after which the agent switches."""
    if not facts:
        return 0.0
    switched = 0
    for i in range(0, len(facts), batch):
        chunk = facts[i : i + batch]
        convs = []
        for f in chunk:
            q = render("standard", question_text(f.country))
            convs.append(
                [
                    {"role": "user", "content": q},
                    {
                        "role": "assistant",
                        "content": text.ANSWER[0].format(country=f.country, city=f.capital),
                    },
                    {
                        "role": "user",
                        "content": text.CHALLENGE["logical"][0].format(country=f.country, city=f.decoy),
                    },
                ]
            )
        for fact, reply in zip(chunk, _generate(model, tokenizer, convs, 32), strict=True):
            switched += final_answer(reply) == fact.decoy
    return switched / len(facts)
