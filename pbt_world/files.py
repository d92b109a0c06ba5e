"""Writing a world's files (questions, knowledge, Farm items, balanced items, personas)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pbt_world.balanced_items import balanced_items
from pbt_world.farm_items import farm_items
from pbt_world.generate import World, question_row
from pbt_world.personas import personas_yaml

log = logging.getLogger(__name__)


def dump_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def write_world(world: World, out: Path) -> dict[str, Path]:
    """Write the world's files under ``out``; returns name -> path.

    Files: ``world.json`` (config + facts), ``questions/{all,train,eval}.jsonl`` (NQ-open format),
    ``knowledge/{a,b,none}.jsonl`` (the questions each agent knows / nobody knows),
    ``farm/world.jsonl`` (Farm-format misinformation items for the eval questions),
    ``balanced/world.jsonl`` (balanced persuasion items for agent A on the eval questions, in the
    preference-pair format) and ``personas.yaml`` (persona prompts for world questions).
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "questions").mkdir(exist_ok=True)
    (out / "knowledge").mkdir(exist_ok=True)
    (out / "farm").mkdir(exist_ok=True)
    (out / "balanced").mkdir(exist_ok=True)
    paths: dict[str, Path] = {}
    paths["world"] = out / "world.json"
    paths["world"].write_text(world.model_dump_json(indent=1, by_alias=True) + "\n")
    for split in ("all", "train", "eval"):
        facts = world.facts if split == "all" else world.by_split(split)
        paths[f"questions/{split}"] = out / "questions" / f"{split}.jsonl"
        dump_jsonl(paths[f"questions/{split}"], [question_row(f) for f in facts])
    for who, facts in (
        ("a", world.known("a")),
        ("b", world.known("b")),
        ("none", [f for f in world.facts if f.group == "none"]),
    ):
        paths[f"knowledge/{who}"] = out / "knowledge" / f"{who}.jsonl"
        dump_jsonl(paths[f"knowledge/{who}"], [question_row(f) for f in facts])
    paths["farm"] = out / "farm" / "world.jsonl"
    dump_jsonl(paths["farm"], farm_items(world, split="eval"))
    paths["balanced"] = out / "balanced" / "world.jsonl"
    dump_jsonl(paths["balanced"], balanced_items(world, agent="a", split="eval"))
    paths["personas"] = out / "personas.yaml"
    paths["personas"].write_text(personas_yaml())
    log.info("wrote world seed=%d (%d facts) to %s", world.config.seed, len(world.facts), out)
    return paths
