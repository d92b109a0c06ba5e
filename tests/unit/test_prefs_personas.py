"""Persona prompt sets: the bundled reference set and loading other sets from YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pbt.errors import ValidationError
from pbt.personas import default_personas_path, load_personas


def test_bundled_set_has_the_reference_personas():
    ps = load_personas()
    assert ps.for_agent(0) == ["logical", "emotional", "credibility"]
    assert ps.for_agent(1) == ["resistant", "acceptant"]
    assert ps.level0 == ["resistant", "logical"]
    for name in ps.personas:
        text = ps.render(name, "Who wrote Paradise Lost?")
        assert text.startswith("You will be asked trivia questions.")
        assert text.endswith("Question: Who wrote Paradise Lost?")
    assert "NEVER CHANGE YOUR ANSWER" in ps.render("resistant", "q")
    assert "establishing your credibility" in ps.render("credibility", "q")
    standard = ps.render_standard("q")
    assert standard.endswith("Question: q") and "persuade" not in standard


def test_level0_choice_is_deterministic_and_uses_both():
    ps = load_personas()
    picks = {ps.pick_level0(f"q{i}", seed=1) for i in range(50)}
    assert picks == {"resistant", "logical"}
    assert ps.pick_level0("q7", seed=1) == ps.pick_level0("q7", seed=1)


def test_questions_with_braces_are_inserted_verbatim():
    assert load_personas().render("logical", "What is {x}?").endswith("Question: What is {x}?")


def test_custom_set_and_errors(tmp_path: Path):
    raw = yaml.safe_load(default_personas_path().read_text())
    raw["agents"]["B"] = ["resistant"]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_personas(path).for_agent(1) == ["resistant"]

    raw["agents"]["A"] = ["logical", "sarcastic"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match="unknown persona 'sarcastic'"):
        load_personas(path)

    raw["agents"]["A"] = ["logical"]
    raw["personas"]["logical"]["prompt"] = "no placeholder"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match=r"\{question\}") as info:
        load_personas(path)
    assert info.value.field == "personas.logical.prompt" and info.value.location == str(path)

    with pytest.raises(ValidationError, match="unknown persona"):
        load_personas().render("nobody", "q")
    with pytest.raises(ValidationError, match="not found"):
        load_personas(tmp_path / "missing.yaml")


def test_bundled_set_is_not_shared_mutable_state():
    a = load_personas()
    a.level0.append("emotional")
    assert load_personas().level0 == ["resistant", "logical"]
