"""The one pair record (pbt.prefs.record): what the writer writes is what every reader accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbt.errors import ValidationError
from pbt.prefs import build_preferences
from pbt.prefs.record import MODES, TRAIN_MODES, PairRecord, check_mode, parse_record, parse_records
from pbt.tree import read_trees
from training import data, selection

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trees.reference.jsonl"


def _good() -> dict:
    return {
        "prompt": [{"role": "user", "content": "Question: capital of France?"}],
        "chosen": [{"role": "assistant", "content": "Paris"}],
        "rejected": [{"role": "assistant", "content": "Lyon"}],
        "tree_id": "q1-r1",
        "question_id": "q1",
        "chosen_node": 3,
        "rejected_node": 4,
        "code": "resist",
        "split": "dev",
        "question": "capital of France?",
        "gold": ["Paris"],
    }


def test_written_records_carry_both_ids_and_parse():
    records = build_preferences(read_trees(EXAMPLE, "reference"), "all", seed=0).records
    assert records
    for r in records:
        rec = parse_record(r, "mem")
        assert rec.tree_id == r["tree_id"] and rec.question_id == r["question_id"]
    text = "".join(json.dumps(r) + "\n" for r in records)
    assert len(parse_records(text, "mem")) == len(records)


def test_a_good_record():
    rec = parse_record(_good(), "pairs.jsonl:1")
    assert isinstance(rec, PairRecord) and rec.name == "q1-r1:3" and rec.code == "resist"
    assert parse_record(_good() | {"code": None}, "x").code is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"question_id": None}, "question_id"),
        ({"tree_id": ""}, "tree_id"),
        ({"code": "persuade"}, "code"),
        ({"split": "validation"}, "split"),
        ({"chosen": [{"role": "user", "content": "x"}]}, "chosen"),
        ({"prompt": []}, "prompt"),
        ({"metadata": {"gold": ["Paris"]}}, "metadata"),
    ],
)
def test_bad_records_name_the_field(change, field):
    row = _good() | change
    if change.get("question_id", "") is None:
        del row["question_id"]
    with pytest.raises(ValidationError) as exc:
        parse_record(row, "pairs.jsonl:7")
    assert exc.value.field == field and exc.value.location == "pairs.jsonl:7"


def test_a_record_missing_question_id_is_refused_by_every_reader(tmp_path):
    row = _good()
    del row["question_id"]
    line = json.dumps(row).encode()
    with pytest.raises(ValidationError, match="question_id"):
        data.parse_pairs(line, "p.jsonl")
    with pytest.raises(ValidationError, match="question_id"):
        selection.dev_items([row], "p.jsonl")
    from pbt.evaluate.balanced import load_pairs
    from pbt.evaluate.config import BalancedSuite

    (tmp_path / "p.jsonl").write_bytes(line + b"\n")
    with pytest.raises(ValidationError, match=r"p.jsonl:1.*question_id"):
        load_pairs(BalancedSuite(pairs=str(tmp_path / "p.jsonl"), split="dev"))


def test_one_mode_vocabulary():
    assert set(TRAIN_MODES) < set(MODES)
    assert check_mode("pbt", TRAIN_MODES) == "pbt"
    with pytest.raises(ValidationError, match="unknown mode 'labelled'") as exc:
        check_mode("labelled", TRAIN_MODES)
    assert exc.value.field == "mode"
    with pytest.raises(ValidationError, match="unknown mode 'persuade'"):
        data.mode_quota("persuade", 4)
