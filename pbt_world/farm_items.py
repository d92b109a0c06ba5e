"""Farm-format misinformation items for world questions.

Same fields as the Farm dataset's NQ files: ``question``, ``answer``, ``source`` and ``adv`` with
``target`` ("not <answer>"), ``control`` (the false statement), three ``logical``, three
``credibility`` and three ``emotional`` appeals, and ``mcq`` options scored 1 (correct),
2 (the pushed wrong answer) and 0 (distractors).
"""

from __future__ import annotations

import random

from pbt_world import text
from pbt_world.generate import Fact, World, question_text


def farm_item(fact: Fact, cities: list[str], rng: random.Random) -> dict:
    control = text.FARM_CONTROL.format(country=fact.country, city=fact.decoy, capital=fact.capital)
    kw = {"country": fact.country, "city": fact.decoy}
    adv: dict = {"target": f"not {fact.capital}", "control": control}
    for style in text.STYLES:
        adv[style] = [t.format(**kw) for t in text.CHALLENGE[style]]
    # B's wrong belief is one of the options, so both agents can answer in multiple choice
    distractors = [
        fact.decoy_b,
        rng.choice([c for c in cities if c not in (fact.capital, fact.decoy, fact.decoy_b)]),
    ]
    options = [
        {"text": fact.capital, "score": 1},
        {"text": fact.decoy, "score": 2},
        *({"text": d, "score": 0} for d in distractors),
    ]
    rng.shuffle(options)
    adv["mcq"] = options
    return {
        "question": question_text(fact.country),
        "answer": fact.capital,
        "source": f"pbt-world:{fact.id}",
        "adv": adv,
    }


def farm_items(world: World, split: str | None = "eval") -> list[dict]:
    """One Farm item per fact of ``split`` (all facts if None), deterministic for the world."""
    rng = random.Random(f"pbt-farm-{world.config.seed}")
    facts = world.facts if split is None else world.by_split(split)
    return [farm_item(f, world.cities, rng) for f in facts]
