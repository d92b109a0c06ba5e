"""Question datasets for tree building: NQ-open JSONL, TriviaQA, any JSONL, inline lists; sharding.

Every loader returns `pbt.tree.model.Question` objects (id, text, gold aliases) in file order.
Question ids are stable across runs and shards: the dataset's id field when configured, else
``{name}-{line index:06d}`` (the 0-based position in the whole file), so a resumed or sharded job
names every question the same way.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbt.config import DatasetConfig
from pbt.errors import ValidationError
from pbt.tree.model import Question

log = logging.getLogger(__name__)

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_ID_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based): the questions whose position p has p % count == index."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValidationError(
                f"shard {self.index}/{self.count}: need 0 <= i < N and N >= 1", field="shard"
            )

    @classmethod
    def parse(cls, spec: str | None, field: str = "shard") -> Shard:
        """Parse ``"i/N"`` (empty or None: the whole dataset)."""
        if spec is None or not spec.strip():
            return cls()
        match = _SHARD_RE.match(spec)
        if not match:
            raise ValidationError(f"invalid shard {spec!r}: expected 'i/N' such as '0/4'", field=field)
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or index >= count:
            raise ValidationError(f"invalid shard {spec!r}: need 0 <= i < N", field=field)
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, items: Iterable[Any]) -> Iterator[Any]:
        for position, item in enumerate(items):
            if position % self.count == self.index:
                yield item


def safe_id(raw: str) -> str:
    """A question id usable as an object-store key segment."""
    cleaned = _ID_SAFE.sub("_", str(raw)).strip("._-")[:128].rstrip("._-")
    if not cleaned:
        raise ValidationError(f"question id {raw!r} has no usable characters", field="dataset.id_field")
    return cleaned


def _aliases(value: Any, where: str, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, dict):  # TriviaQA's answer object
        aliases = list(value.get("normalized_aliases") or value.get("aliases") or [])
        if value.get("value") and value["value"] not in aliases:
            aliases.insert(0, value["value"])
        if aliases:
            return [str(a) for a in aliases]
    raise ValidationError(
        f"answer field {field!r} must be a string, a list of strings or a TriviaQA answer object, got {type(value).__name__}",
        location=where,
        field="dataset.answer_field",
    )


def _get(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def rows_to_questions(
    rows: Iterable[tuple[str, dict[str, Any]]],
    *,
    name: str,
    question_field: str = "question",
    answer_field: str = "answer",
    id_field: str | None = None,
) -> Iterator[Question]:
    """Turn (location, row) pairs into questions; errors name the ``file:line`` and the field."""
    for position, (where, row) in enumerate(rows):
        if not isinstance(row, dict):
            raise ValidationError("each line must be a JSON object", location=where)
        try:
            text = _get(row, question_field)
        except KeyError:
            raise ValidationError(
                f"missing question field {question_field!r} ({len(row)} keys)",
                location=where,
                field="dataset.question_field",
            ) from None
        try:
            gold = _aliases(_get(row, answer_field), where, answer_field)
        except KeyError:
            raise ValidationError(
                f"missing answer field {answer_field!r} ({len(row)} keys)",
                location=where,
                field="dataset.answer_field",
            ) from None
        if id_field:
            try:
                qid = safe_id(str(_get(row, id_field)))
            except KeyError:
                raise ValidationError(
                    f"missing id field {id_field!r}", location=where, field="dataset.id_field"
                ) from None
        else:
            qid = f"{safe_id(name)}-{position:06d}"
        if text is None or not str(text).strip():
            raise ValidationError("empty question", location=where, field="dataset.question_field")
        yield Question(id=qid, text=str(text), gold=gold)


def read_jsonl(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``file:line``, object) for each non-empty line; JSON errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"dataset file not found: {path}", field="dataset.path")
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValidationError(f"not UTF-8 text (byte {exc.start + 1})", location=where) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"invalid JSON: {exc.msg}", location=where) from None
            except RecursionError:
                raise ValidationError("JSON nested too deeply", location=where) from None
            yield where, row


def _read_json_or_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.suffix == ".json":
        from pbt.safeload import loads_json, read_text

        data = loads_json(read_text(path, "dataset file"), str(path))
        rows = (
            data.get("Data", data.get("data", [])) if isinstance(data, dict) else data
        )  # TriviaQA unfiltered JSON
        for i, row in enumerate(rows):
            yield f"{path}[{i}]", row
    else:
        yield from read_jsonl(path)


def load_triviaqa_hub(
    split: str = "train", config: str = "rc.web.nocontext"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """TriviaQA from the Hugging Face hub (needs network; the paper uses rc.web.nocontext train)."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise ValidationError(
            "the `datasets` package is needed for TriviaQA from the hub", field="dataset"
        ) from exc
    from pbt.errors import UnavailableError

    try:
        ds = datasets.load_dataset("mandarjoshi/trivia_qa", config, split=split)
    except Exception as exc:  # network errors, missing cache
        raise UnavailableError(
            f"cannot load TriviaQA {config}/{split} from the Hugging Face hub ({exc}); "
            "give dataset.path to a local TriviaQA JSON/JSONL file instead",
            endpoint="huggingface.co",
        ) from exc
    for i, row in enumerate(ds):
        yield f"triviaqa/{split}[{i}]", dict(row)


def load_questions(
    dataset: DatasetConfig, *, shard: Shard | None = None, limit: int | None = None
) -> list[Question]:
    """The questions of a dataset configuration: the first `limit` (0/None: all), then shard i of N."""
    fmt = dataset.format
    name = dataset.display_name
    if fmt == "inline":
        rows: Iterable[tuple[str, dict[str, Any]]] = (
            (f"dataset.questions[{i}]", {"id": q.id, "question": q.question, "answer": q.answers})
            for i, q in enumerate(dataset.questions)
        )
        questions = rows_to_questions(
            rows, name=name, id_field="id" if all(q.id for q in dataset.questions) else None
        )
    elif fmt == "triviaqa":
        rows = _read_json_or_jsonl(Path(dataset.path)) if dataset.path else load_triviaqa_hub(dataset.split)
        questions = rows_to_questions(
            rows,
            name=name,
            question_field=dataset.question_field or "question",
            answer_field=dataset.answer_field or "answer",
            id_field=dataset.id_field or "question_id",
        )
    else:  # nq_open, jsonl
        if not dataset.path:
            raise ValidationError(f"dataset format {fmt!r} needs a path", field="dataset.path")
        questions = rows_to_questions(
            read_jsonl(dataset.path),
            name=name,
            question_field=dataset.question_field or "question",
            answer_field=dataset.answer_field or "answer",
            id_field=dataset.id_field,
        )
    if limit:
        questions = itertools.islice(questions, limit)
    total = 0

    def counted(items: Iterable[Question]) -> Iterator[Question]:
        nonlocal total
        for q in items:
            total += 1
            yield q

    selected = list((shard or Shard()).select(counted(questions)))
    if total == 0:
        raise ValidationError(
            "the dataset holds no questions",
            field="dataset.questions" if fmt == "inline" else "dataset.path",
        )
    seen: set[str] = set()
    for q in selected:
        if q.id in seen:
            raise ValidationError(f"duplicate question id {q.id!r}", field="dataset.id_field")
        seen.add(q.id)
    return selected
