"""Seeded generator of the synthetic world: invented countries, their capitals, who knows what.

The world is a pure function of `WorldConfig`: the same config (seed included) always gives the
same facts, splits and files, byte for byte.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pbt_world.config import WorldConfig

Group = Literal["both", "a_only", "b_only", "none"]
GROUPS: tuple[Group, ...] = ("both", "a_only", "b_only", "none")

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "sh", "br", "kr", "dr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
_CODAS = ["", "", "", "n", "r", "l", "s"]


class Fact(BaseModel):
    """One invented fact: ``capital(country) = city``, and who knows it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    country: str
    capital: str
    group: Group
    split: Literal["train", "eval"]
    #: the wrong city misinformation items push for this fact; also agent A's belief when A does not know
    decoy: str
    #: agent B's (wrong) belief when B does not know the fact
    decoy_b: str
    #: more wrong cities an agent may name for a fact it does not know (see `Fact.beliefs`)
    others: list[str] = Field(default_factory=list)

    @property
    def known_by_a(self) -> bool:
        return self.group in ("both", "a_only")

    @property
    def known_by_b(self) -> bool:
        return self.group in ("both", "b_only")

    def beliefs(self, agent: str) -> list[str]:
        """The capitals agent ``"a"``/``"b"`` may name: the true one if it knows the fact, else
        its own few wrong candidates, one drawn per conversation. An unknown fact thus leaves the
        agent uncertain (as in WORLD-NOTES, which PBT needs to tell when to accept) but not
        empty-handed (with nothing of its own to say, an agent copies the other's city)."""
        if self.known_by(agent):
            return [self.capital]
        own = self.decoy if agent == "a" else self.decoy_b
        half = len(self.others) // 2
        return [own, *(self.others[:half] if agent == "a" else self.others[half:])]

    def belief(self, agent: str) -> str:
        """The capital agent ``"a"``/``"b"`` names: the true one if it knows the fact, else its
        own consistent wrong city (agents are confidently wrong, like real models, not random)."""
        if self.known_by(agent):
            return self.capital
        return self.decoy if agent == "a" else self.decoy_b

    def known_by(self, agent: str) -> bool:
        """Whether agent ``"a"`` (strong) or ``"b"`` (weak) knows this fact."""
        if agent not in ("a", "b"):
            raise ValueError(f"agent must be 'a' or 'b', got {agent!r}")
        return self.known_by_a if agent == "a" else self.known_by_b


class World(BaseModel):
    """The generated world: its config and its facts (in a fixed order)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["pbt.world/v1"] = Field("pbt.world/v1", alias="schema")
    config: WorldConfig
    facts: list[Fact]

    @property
    def cities(self) -> list[str]:
        return [f.capital for f in self.facts]

    def by_split(self, split: str) -> list[Fact]:
        return [f for f in self.facts if f.split == split]

    def known(self, agent: str) -> list[Fact]:
        return [f for f in self.facts if f.known_by(agent)]

    def names(self) -> list[str]:
        """Every invented name (countries and cities): each is one token of the agents' vocabulary."""
        return [f.country for f in self.facts] + [f.capital for f in self.facts]


def _name(rng: random.Random, syllables: int) -> str:
    parts = []
    for i in range(syllables):
        coda = rng.choice(_CODAS) if i == syllables - 1 else ""
        parts.append(rng.choice(_ONSETS) + rng.choice(_VOWELS) + coda)
    return "".join(parts).capitalize()


def _unique_names(rng: random.Random, count: int, syllables: int, taken: set[str]) -> list[str]:
    names: list[str] = []
    attempts = 0
    while len(names) < count:
        attempts += 1
        if attempts > count * 200:
            raise RuntimeError(f"could not invent {count} distinct names with {syllables} syllables")
        name = _name(rng, syllables)
        if name.lower() in taken:
            continue
        taken.add(name.lower())
        names.append(name)
    return names


def _group_sizes(cfg: WorldConfig) -> dict[Group, int]:
    sizes: dict[Group, int] = {
        "both": round(cfg.n_facts * cfg.frac_both),
        "a_only": round(cfg.n_facts * cfg.frac_a_only),
        "b_only": round(cfg.n_facts * cfg.frac_b_only),
    }
    sizes["none"] = cfg.n_facts - sum(sizes.values())
    if sizes["none"] < 0:  # rounding overshoot
        sizes["both"] += sizes["none"]
        sizes["none"] = 0
    return sizes


def build_world(cfg: WorldConfig) -> World:
    """Invent ``cfg.n_facts`` countries with capitals and split them by knowledge and use."""
    rng = random.Random(f"pbt-world-{cfg.seed}")
    taken: set[str] = set()
    countries = _unique_names(rng, cfg.n_facts, cfg.syllables, taken)
    capitals = _unique_names(rng, cfg.n_facts, cfg.syllables - 1 if cfg.syllables > 2 else 2, taken)
    groups: list[Group] = []
    for group, size in _group_sizes(cfg).items():
        groups.extend([group] * size)
    rng.shuffle(groups)
    # eval split: a fixed share of each knowledge group, so both splits have every kind of fact
    splits: list[str] = ["train"] * cfg.n_facts
    for group in GROUPS:
        idx = [i for i, g in enumerate(groups) if g == group]
        n_eval = round(len(idx) * cfg.eval_fraction)
        for i in rng.sample(idx, n_eval):
            splits[i] = "eval"
    facts = []
    for i, (country, capital) in enumerate(zip(countries, capitals, strict=True)):
        decoy = rng.choice([c for c in capitals if c != capital])
        decoy_b = rng.choice([c for c in capitals if c not in (capital, decoy)])
        others = rng.sample([c for c in capitals if c not in (capital, decoy, decoy_b)], 4)
        facts.append(
            Fact(
                id=f"w{cfg.seed}-{i:04d}",
                country=country,
                capital=capital,
                group=groups[i],
                split=splits[i],  # type: ignore[arg-type]
                decoy=decoy,
                decoy_b=decoy_b,
                others=others,
            )
        )
    return World(config=cfg, facts=facts)


def question_text(country: str) -> str:
    return f"What is the capital of {country}?"


def question_row(fact: Fact) -> dict:
    """A question in the NQ-open format (``question``, ``answer`` aliases) plus its fact id."""
    return {"question": question_text(fact.country), "answer": [fact.capital], "id": fact.id}


def load_world(path: Path) -> World:
    """Read ``world.json`` (or a folder containing it)."""
    if path.is_dir():
        path = path / "world.json"
    return World.model_validate_json(path.read_text())
