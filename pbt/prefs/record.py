"""The pair record and the mode vocabulary: one model for the writer (`pbt prefs`, ExtractPreferences)
and every reader (training, model selection, the evaluator's balanced suite).

A record is TRL's conversational preference format plus provenance::

    {"prompt": [{"role": "user", "content": ...}, ...], "chosen": [{"role": "assistant", ...}],
     "rejected": [{"role": "assistant", ...}], "tree_id", "question_id", "chosen_node",
     "rejected_node", "code", "chosen_score", "rejected_score", "split", "agent", "question", "gold"}

``tree_id`` is the tree the pair came from (``<question id>-r<j>`` for replica j > 0),
``question_id`` its question. ``code`` is ``resist``, ``accept`` or null (unlabelled).

Modes name which pairs a file or a training run holds (PBT-METHOD §4.6): ``accept`` and
``resist`` the pairs of that code, ``pbt`` both in equal numbers, ``labelled`` every labelled
pair, ``all`` every pair (unlabelled ones too). A training run takes one of `TRAIN_MODES`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from pbt.errors import ValidationError, from_pydantic

Code = Literal["accept", "resist"]
CODES: tuple[str, ...] = ("accept", "resist")
Split = Literal["train", "dev", "test"]
SPLITS: tuple[str, ...] = ("train", "dev", "test")
Mode = Literal["labelled", "accept", "resist", "pbt", "all"]
MODES: tuple[str, ...] = ("labelled", "accept", "resist", "pbt", "all")
#: the modes with a fixed accept/resist mix, which share one pair budget in training
TRAIN_MODES: tuple[str, ...] = ("accept", "resist", "pbt")


def check_mode(
    value: Any, modes: tuple[str, ...] = MODES, field: str = "mode", location: str | None = None
) -> str:
    """``value`` if it is one of ``modes``, else a `ValidationError` naming ``field``."""
    if value not in modes:
        raise ValidationError(
            f"unknown mode {value!r} (expected one of {', '.join(modes)})", field=field, location=location
        )
    return value


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


def _one_assistant(messages: list[Message]) -> list[Message]:
    if len(messages) != 1 or messages[0].role != "assistant":
        raise ValueError("must hold exactly one assistant message")
    return messages


class PairRecord(BaseModel):
    """One preference pair (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    prompt: list[Message] = Field(min_length=1)
    chosen: list[Message]
    rejected: list[Message]
    tree_id: str = Field(min_length=1)
    question_id: str = Field(min_length=1)
    code: Code | None
    split: Split
    chosen_node: int | str | None = None
    rejected_node: int | str | None = None
    chosen_score: float | None = None
    rejected_score: float | None = None
    agent: int | None = None
    question: str = ""
    gold: list[str] = Field(default_factory=list)

    _check_chosen = field_validator("chosen")(_one_assistant)
    _check_rejected = field_validator("rejected")(_one_assistant)

    @property
    def name(self) -> str:
        """``tree_id:chosen_node``: how messages name a pair."""
        return f"{self.tree_id}:{self.chosen_node if self.chosen_node is not None else '?'}"


def parse_record(row: Any, where: str | None = None) -> PairRecord:
    """Validate one parsed record; errors name ``where`` (``file:line``) and the field."""
    if not isinstance(row, dict):
        raise ValidationError("each line must be a JSON object", location=where)
    try:
        return PairRecord.model_validate(row)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, location=where, echo_input=True) from None


def parse_records(text: str, location: str) -> list[tuple[int, PairRecord]]:
    """(line number, record) of every non-blank JSON line of a pair file."""
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{location}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON ({exc.msg})", location=where) from None
        out.append((lineno, parse_record(row, where)))
    return out


def record_dict(record: PairRecord) -> dict[str, Any]:
    """The record as written (every field, in the model's order)."""
    return record.model_dump(mode="json")
