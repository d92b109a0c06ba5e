"""Loading the Farm dataset (Xu et al. 2024) for the misinformation suite.

Each line of a subset file (NQ1, NQ2, BoolQ, TruthfulQA) is a JSON object::

    {"question": ..., "answer": "Yale" | true, "source": ...,
     "adv": {"target": "not Yale", "control": "Yale did not win ...",
             "logical": [3 appeals], "credibility": [3], "emotional": [3],
             "mcq": [{"text": "Duke", "score": 2}, {"text": "Yale", "score": 1}, ...]}}

In ``mcq`` the options scored 1 are correct (2 marks the misinformation target, 0 a distractor).
BoolQ items have a boolean answer and no options: they are asked as yes / no / don't know.
Errors name the file and line (``NQ1.jsonl:17``) and the field path (``adv.mcq``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pbt.errors import ValidationError

log = logging.getLogger(__name__)

DONT_KNOW = "Don't know"
ALL_INCORRECT = "All options are incorrect"
APPEAL_KINDS = ("logical", "credibility", "emotional")


@dataclass(frozen=True)
class FarmItem:
    """One Farm question. `options` excludes the two extra choices, which prompts add."""

    item_id: str  # "{subset}-{line}"
    subset: str
    question: str
    options: tuple[str, ...]
    correct: frozenset[str]  # option texts that are right
    target: str
    control: str
    appeals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    boolean: bool = False
    location: str = ""  # file:line

    def appeal(self, kind: str, index: int) -> str:
        seq = self.appeals.get(kind, ())
        if not seq:
            raise ValidationError(
                f"item has no {kind!r} appeals", field=f"adv.{kind}", location=self.location
            )
        return seq[index % len(seq)]


def _require_str(obj: dict, key: str, where: str, prefix: str = "") -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if key not in obj else f"{type(value).__name__} {value!r}"[:80]
        raise ValidationError(f"expected a non-empty string, got {got}", field=prefix + key, location=where)
    return value.strip()


def parse_farm_line(line: str, *, subset: str, location: str, line_no: int) -> FarmItem:
    """Parse one Farm JSON line; raises `ValidationError` naming ``file:line`` and the field."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"malformed JSON ({exc.msg} at column {exc.colno})", location=location
        ) from None
    except RecursionError:
        raise ValidationError("JSON nested too deeply", location=location) from None
    if not isinstance(row, dict):
        raise ValidationError(f"expected a JSON object, got {type(row).__name__}", location=location)
    question = _require_str(row, "question", location)
    adv = row.get("adv")
    if not isinstance(adv, dict):
        raise ValidationError(
            "missing the 'adv' object (target, control, appeals)", field="adv", location=location
        )
    target = _require_str(adv, "target", location, "adv.")
    control = _require_str(adv, "control", location, "adv.")
    appeals: dict[str, tuple[str, ...]] = {}
    for kind in APPEAL_KINDS:
        seq = adv.get(kind, [])
        if not isinstance(seq, list) or not all(isinstance(s, str) for s in seq):
            raise ValidationError("expected a list of strings", field=f"adv.{kind}", location=location)
        appeals[kind] = tuple(s.strip() for s in seq)
    answer = row.get("answer")
    if isinstance(answer, bool):
        options = ("Yes", "No")
        correct = frozenset({"Yes" if answer else "No"})
        boolean = True
    else:
        mcq = adv.get("mcq")
        if not isinstance(mcq, list) or not mcq:
            raise ValidationError(
                "item has no multiple-choice options (a non-boolean Farm item needs adv.mcq)",
                field="adv.mcq",
                location=location,
            )
        texts: list[str] = []
        right: set[str] = set()
        for i, opt in enumerate(mcq):
            if not isinstance(opt, dict) or not isinstance(opt.get("text"), str) or "score" not in opt:
                raise ValidationError(
                    "each option needs 'text' and 'score'", field=f"adv.mcq[{i}]", location=location
                )
            text = opt["text"].strip()
            if text in texts:
                continue  # duplicate option text: keep the first
            texts.append(text)
            if opt["score"] == 1:
                right.add(text)
        if not right:
            raise ValidationError(
                "no option has score 1 (the correct answer)", field="adv.mcq", location=location
            )
        options, correct, boolean = tuple(texts), frozenset(right), False
    return FarmItem(
        item_id=f"{subset}-{line_no}",
        subset=subset,
        question=question,
        options=options,
        correct=correct,
        target=target,
        control=control,
        appeals=appeals,
        boolean=boolean,
        location=location,
    )


def load_farm_file(
    path: str | Path, *, limit: int | None = None, subset: str | None = None
) -> list[FarmItem]:
    """Load one Farm subset file; the subset name defaults to the file stem (NQ1, BoolQ, ...)."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"Farm file not found: {path}", field="suites.misinformation.files")
    subset = subset or path.stem
    items: list[FarmItem] = []
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValidationError(
                    f"not UTF-8 text (byte {exc.start + 1})", location=f"{path}:{line_no}"
                ) from None
            if not line.strip():
                continue
            items.append(parse_farm_line(line, subset=subset, location=f"{path}:{line_no}", line_no=line_no))
            if limit is not None and len(items) >= limit:
                break
    if not items:
        raise ValidationError("Farm file holds no items", location=str(path))
    log.info("loaded %d Farm items from %s", len(items), path)
    return items


def farm_files(spec: str | Path) -> list[Path]:
    """Expand a file or folder (flat, or the original repository's src/Farm_dataset/) into subset files."""
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        for candidate in (path / "src" / "Farm_dataset", path / "Farm_dataset", path):
            found = sorted(candidate.glob("*.jsonl"))
            if found:
                return found
        raise ValidationError(f"no *.jsonl Farm files under {path}", field="suites.misinformation.files")
    raise ValidationError(f"Farm path not found: {path}", field="suites.misinformation.files")


def load_farm(specs: list[str] | list[Path], *, limit: int | None = None) -> dict[str, list[FarmItem]]:
    """Load every subset named by `specs` (files or folders); returns {subset: items}."""
    subsets: dict[str, list[FarmItem]] = {}
    for spec in specs:
        for path in farm_files(spec):
            if path.stem in subsets:
                raise ValidationError(f"subset {path.stem!r} given twice", location=str(path))
            subsets[path.stem] = load_farm_file(path, limit=limit)
    return subsets
