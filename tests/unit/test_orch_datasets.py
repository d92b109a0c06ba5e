"""Datasets: NQ-open JSONL, custom JSONL fields, TriviaQA local files, inline; --shard i/N; errors name file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbt.config import DatasetConfig
from pbt.datasets import Shard, load_questions
from pbt.errors import ValidationError


def test_nq_open_vendored_file_and_shards(data_dir: Path) -> None:
    path = data_dir / "nq_open" / "NQ-open.dev.jsonl"
    cfg = DatasetConfig(format="nq_open", path=str(path))
    first = load_questions(cfg, limit=20)
    assert len(first) == 20
    assert (
        first[0].id == "NQ-open-000000" and first[0].text == "when was the last time anyone was on the moon"
    )
    assert first[0].gold == ["14 December 1972 UTC", "December 1972"]
    shards = [load_questions(cfg, limit=20, shard=Shard.parse(f"{i}/3")) for i in range(3)]
    ids = [q.id for shard in shards for q in shard]
    assert sorted(ids) == sorted(q.id for q in first) and len(set(ids)) == 20  # a partition
    assert [q.id for q in shards[1]][:2] == ["NQ-open-000001", "NQ-open-000004"]


@pytest.mark.parametrize("spec", ["3/3", "-1/2", "1/0", "a/b", "1", "1/2/3"])
def test_bad_shard_specs(spec: str) -> None:
    with pytest.raises(ValidationError) as info:
        Shard.parse(spec)
    assert info.value.field == "shard"


def test_custom_jsonl_fields_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "custom.jsonl"
    rows = [
        {"meta": {"uid": "a/1"}, "q": "Q1?", "gold": {"value": "X", "aliases": ["x", "ex"]}},
        {"meta": {"uid": "b 2"}, "q": "Q2?", "gold": "Y"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    cfg = DatasetConfig(
        format="jsonl", path=str(path), question_field="q", answer_field="gold", id_field="meta.uid"
    )
    questions = load_questions(cfg)
    assert [(q.id, q.text, q.gold) for q in questions] == [
        ("a_1", "Q1?", ["X", "x", "ex"]),
        ("b_2", "Q2?", ["Y"]),
    ]


def test_errors_name_the_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok", "answer": ["a"]}\n{"question": "no answer"}\n')
    with pytest.raises(ValidationError) as info:
        load_questions(DatasetConfig(format="nq_open", path=str(path)))
    assert info.value.location == f"{path}:2" and info.value.field == "dataset.answer_field"
    path.write_text('{"question": "ok", "answer": ["a"]}\nnot json\n')
    with pytest.raises(ValidationError) as info:
        load_questions(DatasetConfig(format="nq_open", path=str(path)))
    assert info.value.location == f"{path}:2"
    with pytest.raises(ValidationError) as info:
        load_questions(DatasetConfig(format="nq_open", path=str(tmp_path / "absent.jsonl")))
    assert info.value.field == "dataset.path"


def test_triviaqa_local_file(tmp_path: Path) -> None:
    path = tmp_path / "triviaqa.json"
    data = {
        "Data": [
            {
                "question_id": "tc_1",
                "question": "Who?",
                "answer": {"value": "Him", "normalized_aliases": ["him", "he"]},
            }
        ]
    }
    path.write_text(json.dumps(data))
    (q,) = load_questions(DatasetConfig(format="triviaqa", path=str(path)))
    assert (q.id, q.text, q.gold) == ("tc_1", "Who?", ["Him", "him", "he"])


def test_inline_and_duplicates() -> None:
    cfg = DatasetConfig(format="inline", questions=[{"question": "A?", "answers": ["a"]}, {"question": "B?"}])
    assert [q.id for q in load_questions(cfg)] == ["inline-000000", "inline-000001"]
    dup = DatasetConfig(
        format="inline", questions=[{"id": "x", "question": "A?"}, {"id": "x", "question": "B?"}]
    )
    with pytest.raises(ValidationError, match="duplicate question id"):
        load_questions(dup)


def test_triviaqa_from_the_hub_and_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    from pbt.errors import UnavailableError

    rows = [
        {
            "question_id": "tc_9",
            "question": "Which?",
            "answer": {"value": "That", "normalized_aliases": ["that"]},
        }
    ]
    calls = []

    def fake_load(name, config, split):
        calls.append((name, config, split))
        return rows

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    (q,) = load_questions(DatasetConfig(format="triviaqa", split="validation"))
    assert calls == [("mandarjoshi/trivia_qa", "rc.web.nocontext", "validation")]
    assert (q.id, q.gold) == ("tc_9", ["That", "that"])

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UnavailableError, match="give dataset.path"):
        load_questions(DatasetConfig(format="triviaqa"))
