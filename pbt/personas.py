"""Persona prompt sets (PBT-METHOD.md §2). Persona sets are configuration, not code.

The default set (`pbt/data/personas.yaml`) holds the reference implementation's prompts:
agent A persuades as ``logical`` / ``emotional`` / ``credibility``, agent B is ``resistant`` /
``acceptant``; level 0 opens with one prompt drawn from ``level0``; ``standard`` is the
persona-free instruction used at test time and in the prompt of every preference pair.
Every prompt contains the placeholder ``{question}``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from pbt.errors import ValidationError, from_pydantic

PLACEHOLDER = "{question}"


def _check_placeholder(text: str) -> str:
    if PLACEHOLDER not in text:
        raise ValueError(f"prompt must contain the placeholder {PLACEHOLDER} (where the question goes)")
    return text


def fill(template: str, question: str) -> str:
    """Insert the question (plain replacement: braces elsewhere in the text stay as they are)."""
    return template.replace(PLACEHOLDER, question)


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    description: str = ""

    @field_validator("prompt")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        return _check_placeholder(value)


class PersonaSet(BaseModel):
    """Named persona prompts and which agent uses which, in generation order."""

    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    standard: str = Field(description="persona-free instruction (test time, team debate, pair prompts)")
    level0: list[str] = Field(min_length=1, description="personas level 0 may open with (one per tree)")
    agents: dict[Literal["A", "B"], list[str]] = Field(description="persona names per agent, in order")
    personas: dict[str, Persona]

    @field_validator("standard")
    @classmethod
    def _standard_has_placeholder(cls, value: str) -> str:
        return _check_placeholder(value)

    @model_validator(mode="after")
    def _names_exist(self) -> PersonaSet:
        for agent in ("A", "B"):
            if agent not in self.agents or not self.agents[agent]:
                raise ValueError(f"agents.{agent}: at least one persona is required")
        for where, names in [
            ("level0", self.level0),
            ("agents.A", self.agents["A"]),
            ("agents.B", self.agents["B"]),
        ]:
            for name in names:
                if name not in self.personas:
                    raise ValueError(f"{where}: unknown persona {name!r} (known: {sorted(self.personas)})")
        return self

    def for_agent(self, agent: int) -> list[str]:
        """Persona names of agent 0 (A) or 1 (B), in the order its branches are generated."""
        return list(self.agents["AB"[agent]])

    def render(self, persona: str, question: str) -> str:
        """The persona's prompt with the question filled in."""
        try:
            return fill(self.personas[persona].prompt, question)
        except KeyError:
            raise ValidationError(
                f"unknown persona {persona!r} (known: {sorted(self.personas)})", field="persona"
            ) from None

    def render_standard(self, question: str) -> str:
        return fill(self.standard, question)

    def pick_level0(self, key: str, seed: int = 0) -> str:
        """Deterministic choice of the level-0 persona for one tree (stable across processes)."""
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        return self.level0[int.from_bytes(digest[:8], "big") % len(self.level0)]


def default_personas_path() -> Path:
    return Path(str(resources.files("pbt.data").joinpath("personas.yaml")))


def load_personas(path: str | Path | None = None) -> PersonaSet:
    """Load a persona set from YAML (the bundled reference set when `path` is None)."""
    if path is None:
        return _bundled().model_copy(deep=True)
    return _load(Path(path))


@cache
def _bundled() -> PersonaSet:
    return _load(default_personas_path())


def _load(path: Path) -> PersonaSet:
    from pbt.safeload import load_yaml, read_text

    try:
        text = read_text(path, "persona file")
    except ValidationError as exc:
        raise ValidationError(exc.message, field="personas") from None
    raw = load_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise ValidationError("expected a mapping at the top level", location=str(path))
    try:
        return PersonaSet.model_validate(raw)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, location=str(path)) from None
