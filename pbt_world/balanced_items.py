"""Balanced persuasion items for world questions, in the preference-pair format the balanced suite reads.

The paper's balanced set (PBT-METHOD §6c) is the test split of the pairs mined from trees. In the
world that set is small and, before the §4.5 filter, mostly not about persuasion (measured, see
docs/demo.md); with the filter a seed's held-out trees give one to three accept pairs. These items
are built from the world's ground truth instead, like the Farm items (`pbt_world.farm_items`):

- ``resist`` (+→-): a held-out fact the model's agent knows; its previous answer is the true
  capital, the other agent pushes a wrong city (its own wrong belief for the fact).
- ``accept`` (-→+): a held-out fact the agent does not know; its previous answer is one of its own
  wrong cities (`Fact.beliefs`), the other agent pushes the true capital.

Each fact gives one item per push template (the other agent's hold replies, as in trees), and the
two codes are trimmed to the same count, so the set is balanced like §4.6's. The prompt is
shaped like a tree pair's: the world's standard instruction with the question, the agent's
answer, the push. ``chosen`` / ``rejected`` hold the correct and the wrong reply, so the file is
also a valid preference-pair file.
"""

from __future__ import annotations

from pbt_world import text
from pbt_world.generate import Fact, World, question_text
from pbt_world.personas import render


def _item(fact: Fact, code: str, own: str, push: str, k: int, hedge: bool = False) -> dict:
    kw = {"country": fact.country}
    answers = text.UNSURE if hedge else text.ANSWER
    hold = (text.UNSURE_HOLD if hedge else text.HOLD)[k].format(city=own, **kw)
    give_in = (text.UNSURE_GIVE_IN if hedge else text.GIVE_IN)[k].format(city=push, **kw)
    question = question_text(fact.country)
    return {
        "prompt": [
            {"role": "user", "content": render("standard", question)},
            {"role": "assistant", "content": answers[k % len(answers)].format(city=own, **kw)},
            {"role": "user", "content": text.HOLD[(k + 1) % len(text.HOLD)].format(city=push, **kw)},
        ],
        "chosen": [{"role": "assistant", "content": hold if code == "resist" else give_in}],
        "rejected": [{"role": "assistant", "content": give_in if code == "resist" else hold}],
        "tree_id": fact.id,
        "question_id": fact.id,
        "chosen_node": f"{code}-{k}",
        "rejected_node": f"{code}-{k}-wrong",
        "code": code,
        "split": "test",
        "agent": 0,
        "question": question,
        "gold": [fact.capital],
    }


def balanced_items(
    world: World, agent: str = "a", split: str | None = "eval", hedge: bool = False
) -> list[dict]:
    """Resist and accept items for ``agent`` on the facts of ``split`` (all facts if None), balanced.

    Deterministic for the world: facts in world order, the first ``n`` of each kind, where ``n``
    is the smaller count; one item per push template for each. ``hedge``: the agent's answer on
    an unknown fact voices its uncertainty (``text.UNSURE``, and the replies recall it,
    ``text.UNSURE_GIVE_IN`` / ``UNSURE_HOLD``), as agents trained with ``hedge_unknown`` 1 say it.
    """
    facts = world.facts if split is None else world.by_split(split)
    known = [f for f in facts if f.known_by(agent)]
    unknown = [f for f in facts if not f.known_by(agent)]
    n = min(len(known), len(unknown))
    items = []
    for i, fact in enumerate(known[:n]):
        push = fact.decoy_b if agent == "a" else fact.decoy  # the other agent's wrong city
        for k in range(len(text.HOLD)):
            items.append(_item(fact, "resist", fact.capital, push, k))
        wrong = unknown[i]
        beliefs = wrong.beliefs(agent)
        for k in range(len(text.HOLD)):
            items.append(_item(wrong, "accept", beliefs[k % len(beliefs)], wrong.capital, k, hedge))
    return items
