"""Reading evaluation inputs: a local path or, failing that, an object-store key.

Question sets are JSON Lines of ``{"question": str, "answer": [aliases] | str}`` (the NQ-open
and TriviaQA-converted shape); errors name ``file:line`` and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pbt.errors import ValidationError
from pbt.store import ObjectStore


@dataclass(frozen=True)
class Question:
    item_id: str
    question: str
    aliases: tuple[str, ...]


def read_source(spec: str, store: ObjectStore | None, *, field: str) -> tuple[str, str]:
    """(text, location) of a local file, else of a store key; `field` names the config field."""
    from pbt.safeload import read_text

    path = Path(spec)
    if path.is_file():
        return read_text(path, field.rsplit(".", 1)[-1]), str(path)
    if store is not None and not spec.startswith("/"):
        try:
            if store.exists(spec):
                return store.get_text(spec), store.uri(spec)
        except ValidationError:
            pass  # not a valid key either
    where = f" or in the store {store.url}" if store is not None else ""
    raise ValidationError(f"{spec!r} is neither a local file{where}", field=field)


def iter_jsonl(text: str, location: str):
    """(line number, object) of each non-empty line; malformed lines raise naming ``location:line``."""
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"malformed JSON ({exc.msg} at column {exc.colno})", location=f"{location}:{n}"
            ) from None
        except RecursionError:
            raise ValidationError("JSON nested too deeply", location=f"{location}:{n}") from None
        if not isinstance(row, dict):
            raise ValidationError(
                f"expected a JSON object, got {type(row).__name__}", location=f"{location}:{n}"
            )
        yield n, row


def load_questions(
    spec: str, store: ObjectStore | None, *, field: str, limit: int | None = None
) -> list[Question]:
    text, location = read_source(spec, store, field=field)
    out: list[Question] = []
    for n, row in iter_jsonl(text, location):
        q = row.get("question")
        if not isinstance(q, str) or not q.strip():
            raise ValidationError("expected a non-empty string", field="question", location=f"{location}:{n}")
        ans = row.get("answer", row.get("answers"))
        if isinstance(ans, str):
            ans = [ans]
        if not isinstance(ans, list) or not ans or not all(isinstance(a, str) for a in ans):
            raise ValidationError(
                "expected a non-empty list of alias strings", field="answer", location=f"{location}:{n}"
            )
        item_id = str(row.get("id", row.get("question_id", f"q{n}")))
        out.append(Question(item_id=item_id, question=q.strip(), aliases=tuple(ans)))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise ValidationError("no questions", location=location)
    return out
