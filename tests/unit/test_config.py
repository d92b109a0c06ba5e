"""RunConfig: paper defaults, YAML errors with file:line and field path, the gRPC mapping both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbt.config import RunConfig
from pbt.errors import ValidationError
from pbt.rpc import run_config_from_proto, run_config_to_proto
from pbt.v1 import orchestrator_pb2 as pb

MINIMAL = {
    "agents": {
        "a": {"endpoint": "http://a:8080"},
        "b": {"endpoint": "http://b:8080"},
        "extractor": {"endpoint": "http://b:8080"},
    },
    "dataset": {"format": "nq_open", "path": "nq.jsonl"},
}


def test_defaults_reproduce_the_paper() -> None:
    config = RunConfig.from_dict(MINIMAL)
    assert config.tree.max_turns == 4 and config.branching() == [1, 2, 3, 2]
    assert config.persona_set.agents == {
        "A": ["logical", "emotional", "credibility"],
        "B": ["resistant", "acceptant"],
    }
    params = config.sampling.params()
    assert (params.temperature, params.top_p, params.top_k, params.max_tokens, params.min_tokens) == (
        0.7,
        1.0,
        None,
        80,
        8,
    )
    assert config.extraction.mode == "llm" and config.extraction.max_tokens == 15
    assert config.tree.stop_on_agreement


def test_branching_follows_persona_counts_and_validates() -> None:
    config = RunConfig.from_dict({**MINIMAL, "personas": {"a": ["logical"]}, "tree": {"max_turns": 5}})
    assert config.branching() == [1, 2, 1, 2, 1]
    for tree, field, message in [
        ({"max_turns": 3, "branching": [1, 2]}, "tree.branching", "has 2 levels but max_turns is 3"),
        ({"max_turns": 2, "branching": [2, 2]}, "tree.branching[0]", "must be 1"),
        ({"max_turns": 2, "branching": [1, 0]}, "tree.branching[1]", "0 is outside 1..16"),
    ]:
        with pytest.raises(ValidationError) as info:
            RunConfig.from_dict({**MINIMAL, "tree": tree})
        assert info.value.field == field and message in info.value.message


def test_yaml_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "agents:\n"
        "  a: {endpoint: http://a:8080}\n"
        "  b: {endpoint: http://b:8080}\n"
        "extraction: {mode: rules}\n"
        "tree:\n"
        "  max_turns: 12\n"
    )
    with pytest.raises(ValidationError) as info:
        RunConfig.from_yaml(path)
    assert info.value.field == "tree.max_turns"
    assert info.value.location == f"{path}:6"
    assert "less than or equal to 8" in str(info.value)

    path.write_text(
        "agents:\n  a: {endpoint: http://a}\n  b: {endpoint: http://b}\nextraction: {mode: rules}\npersonas:\n  b: [resistant, stubborn]\n"
    )
    with pytest.raises(ValidationError) as info:
        RunConfig.from_yaml(path)
    assert info.value.field == "personas.b[1]" and "stubborn" in str(info.value)

    path.write_text("agents:\n  a: {endpoint: http://a}\n  b: {endpoint: http://b, colour: red}\n")
    with pytest.raises(ValidationError) as info:
        RunConfig.from_yaml(path)
    assert info.value.field == "agents.b.colour" and info.value.location == f"{path}:3"

    with pytest.raises(ValidationError, match="not found"):
        RunConfig.from_yaml(tmp_path / "missing.yaml")


def test_llm_extraction_needs_an_extractor() -> None:
    data = {**MINIMAL, "agents": {k: v for k, v in MINIMAL["agents"].items() if k != "extractor"}}
    with pytest.raises(ValidationError, match="needed when extraction.mode is 'llm'") as info:
        RunConfig.from_dict(data)
    assert info.value.field == "agents.extractor"
    assert RunConfig.from_dict({**data, "extraction": {"mode": "rules"}}).agents.extractor is None


def test_proto_round_trip_keeps_every_field() -> None:
    config = RunConfig.from_dict(
        {
            **MINIMAL,
            "personas": {
                "a": ["logical"],
                "level0": ["logical"],
                "prompts": {"logical": "Be logical. {question}"},
            },
            "sampling": {"temperature": 0.0, "top_k": 5, "seed": 7, "stop": ["\n\n"], "min_tokens": 0},
            "extraction": {"mode": "rules", "max_tokens": 9},
            "tree": {"max_turns": 3, "branching": [1, 4, 2], "stop_on_agreement": False},
            "dataset": {"format": "inline", "questions": [{"id": "x", "question": "Q?", "answers": ["A"]}]},
            "store": {"url": "s3://bucket/prefix", "endpoint": "http://minio:9000", "secure": False},
            "max_trees_in_flight": 3,
        }
    )
    message = run_config_to_proto(config)
    assert message.extraction.mode == pb.EXTRACTION_MODE_RULES
    assert message.dataset.format == pb.DATASET_FORMAT_INLINE
    assert message.sampling.HasField("temperature") and message.sampling.temperature == 0.0
    again = run_config_from_proto(pb.RunConfig.FromString(message.SerializeToString()))
    assert again == config
    assert again.fingerprint() == config.fingerprint()


def test_proto_errors_carry_the_request_path() -> None:
    message = run_config_to_proto(RunConfig.from_dict(MINIMAL))
    message.sampling.top_p = 1.5
    with pytest.raises(ValidationError) as info:
        run_config_from_proto(message)
    assert info.value.field == "config.sampling.top_p"
    message = run_config_to_proto(RunConfig.from_dict(MINIMAL))
    message.agents.extractor.endpoint = "  "
    with pytest.raises(ValidationError) as info:
        run_config_from_proto(message)
    assert info.value.field == "config.agents.extractor.endpoint"


def test_fingerprint_ignores_transport_but_not_content() -> None:
    base = RunConfig.from_dict(MINIMAL)
    moved = RunConfig.from_dict(
        {**MINIMAL, "agents": {**MINIMAL["agents"], "a": {"endpoint": "http://new:1", "max_in_flight": 7}}}
    )
    hotter = RunConfig.from_dict({**MINIMAL, "sampling": {"temperature": 1.0}})
    assert moved.fingerprint() == base.fingerprint()
    assert hotter.fingerprint() != base.fingerprint()
