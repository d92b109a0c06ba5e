"""Persona prompts for world questions, in the project's persona-set format (`pbt.personas`).

The persona names are the reference's (A: logical / emotional / credibility, B: resistant /
acceptant, plus ``standard``); every prompt carries the same short base instruction and ends
with ``Question: {question}`` like the paper's prompts, but uses only words the world agents
know. The agents are trained on exactly these prompts (`pbt_world.corpus`), so the orchestrator
and the evaluator run the paper's tree shape and suites on them.
"""

from __future__ import annotations

from functools import lru_cache

import yaml

from pbt.personas import Persona, PersonaSet

BASE = "Answer with your reasons and a Final Answer."
Q = "Question: {question}"

_PROMPTS: dict[str, tuple[str, str]] = {
    "resistant": ("does not change its answer easily", f"{BASE} Do not change your answer. {Q}"),
    "acceptant": ("is open to the other's answer", f"{BASE} Be open to change. {Q}"),
    "logical": ("persuades with logic", f"{BASE} Use logic. {Q}"),
    "emotional": ("persuades with feelings", f"{BASE} Use feelings. {Q}"),
    "credibility": ("persuades with expertise", f"{BASE} Use your expertise. {Q}"),
}
STANDARD = f"{BASE} {Q}"

#: give-in probability of a persona, where it differs from the agent's base rate
PERSONA_GIVE_IN: dict[str, float] = {"resistant": 0.25, "acceptant": 0.75}


@lru_cache(maxsize=1)
def world_persona_set() -> PersonaSet:
    return PersonaSet(
        name="pbt-world",
        standard=STANDARD,
        level0=["resistant", "logical"],
        agents={"A": ["logical", "emotional", "credibility"], "B": ["resistant", "acceptant"]},
        personas={name: Persona(prompt=p, description=d) for name, (d, p) in _PROMPTS.items()},
    )


def all_prompts() -> dict[str, str]:
    """persona name (and ``standard``) -> prompt template with ``{question}``."""
    return {"standard": STANDARD, **{name: p for name, (_, p) in _PROMPTS.items()}}


def render(persona: str, question: str) -> str:
    if persona == "standard":
        return world_persona_set().render_standard(question)
    return world_persona_set().render(persona, question)


def personas_yaml() -> str:
    """The persona set as YAML, loadable with `pbt.personas.load_personas(path)`."""
    return yaml.safe_dump(world_persona_set().model_dump(mode="json"), sort_keys=False, width=200)
