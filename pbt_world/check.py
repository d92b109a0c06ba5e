"""Measure what a trained world agent knows and how persuadable it is (greedy, in-process)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pbt_world import text
from pbt_world.generate import Fact, World, question_text
from pbt_world.personas import render

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


def is_hedged(reply: str) -> bool:
    """Whether a reply opens like one of the world's uncertain answers (``text.UNSURE``)."""
    return any(reply.strip().startswith(t.split(" the capital", 1)[0]) for t in text.UNSURE)


def hedge_rates(model: Any, tokenizer: Any, world: World, agent: str, batch: int = 64) -> dict[str, float]:
    """Share of the agent's first answers (standard prompt, greedy) that voice uncertainty, on the facts
    it knows (``hedge_known``) and on those it does not (``hedge_unknown``)."""
    rates = {}
    for name, facts in (
        ("hedge_known", world.known(agent)),
        ("hedge_unknown", [f for f in world.facts if not f.known_by(agent)]),
    ):
        hedged = 0
        for i in range(0, len(facts), batch):
            convs = [
                [{"role": "user", "content": render("standard", question_text(f.country))}]
                for f in facts[i : i + batch]
            ]
            hedged += sum(is_hedged(r) for r in _generate(model, tokenizer, convs))
        rates[name] = hedged / len(facts) if facts else 0.0
    return rates


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


def reply_consistency(
    model: Any, tokenizer: Any, world: World, agent: str, *, per_fact: int = 1, seed: int = 0, batch: int = 64
) -> dict[str, float]:
    """Whether the agent's city follows its own words: with a give-in opening forced
    ("You are right. The capital of X is"), the share of greedy next tokens that name the pushed
    city; with a hold opening ("I disagree. ..."), the share that name its own previous answer.

    Dialogue trees are labelled by answers, so an agent that says "You are right" and then names
    its own city (measured on agents trained too briefly: the city did not depend on the opening
    at all) yields pairs that teach nothing about persuasion. Contexts are one to three exchanges
    deep.
    """
    import random

    import torch

    rng = random.Random(seed)
    rows: list[tuple[str, str, str, str]] = []  # (kind, own, push, prompt)
    for fact in world.facts:
        for _ in range(per_fact):
            own = rng.choice(fact.beliefs(agent))
            push = rng.choice([c for c in world.cities if c != own])
            c = fact.country
            msgs = [
                {
                    "role": "user",
                    "content": render(rng.choice(["logical", "resistant", "acceptant"]), question_text(c)),
                },
                {"role": "assistant", "content": text.ANSWER[0].format(country=c, city=own)},
            ]
            for _ in range(rng.randrange(3)):
                msgs.append({"role": "user", "content": rng.choice(text.HOLD).format(country=c, city=push)})
                msgs.append(
                    {"role": "assistant", "content": rng.choice(text.HOLD).format(country=c, city=own)}
                )
            msgs.append(
                {"role": "user", "content": rng.choice(text.HOLD + text.GIVE_IN).format(country=c, city=push)}
            )
            prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            for kind, template in (("give_in", rng.choice(text.GIVE_IN)), ("hold", rng.choice(text.HOLD))):
                opening = template.split("{city}")[0].format(country=c).rstrip()
                rows.append((kind, own, push, prompt + opening))
    hits = {"give_in": 0, "hold": 0}
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        enc = tokenizer([r[3] for r in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            best = model(**enc).logits[:, -1].argmax(-1).tolist()
        for (kind, own, push, _), tok_id in zip(chunk, best, strict=True):
            said = tokenizer.decode([tok_id]).strip()
            hits[kind] += said == (push if kind == "give_in" else own)
    n = len(rows) // 2
    return {"give_in_names_push": hits["give_in"] / n, "hold_keeps_own": hits["hold"] / n}
