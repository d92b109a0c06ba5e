"""Preference pairs for training: read, validate, select by mode with one pair budget, length-check.

Every problem a user can fix is found here, before a model is loaded: an unreadable or empty file,
a malformed line (reported as ``file:line`` with the field), a mode with no pairs of a kind it
needs, a budget larger than what the file holds, and pairs longer than ``max_length`` (counted,
then truncated or dropped according to the ``overlong`` policy, with a report).

Mode selection (PBT-METHOD.md §4.6): with ``n = pair_budget`` (default: the smaller of the
numbers of ``accept`` and ``resist`` pairs in the split), ``accept`` takes n accept pairs,
``resist`` n resist pairs and ``pbt`` ``n // 2`` resist plus ``n - n // 2`` accept pairs, so the
three variants see the same number of pairs. The dev split used for model selection is balanced
(half resist, half accept) whatever the training mode, as in §6c.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pbt.errors import ValidationError
from pbt.prefs.record import CODES, SPLITS, TRAIN_MODES, check_mode, parse_record, parse_records
from pbt.store.layout import pairs_manifest_key, pairs_manifest_name

log = logging.getLogger(__name__)


@dataclass
class PairFile:
    """The pairs of one file with where they came from (for the lineage manifest)."""

    uri: str
    sha256: str
    rows: list[dict[str, Any]]
    #: the ``pbt.prefs/v1`` manifest written beside the file by `pbt prefs` (``x.manifest.json``), if any
    prefs_manifest: dict[str, Any] | None = None


@dataclass
class LengthReport:
    """How many selected pairs exceed ``max_length`` tokens and what was done about it."""

    max_length: int | None
    policy: str
    checked: int = 0
    overlong: int = 0
    prompt_too_long: int = 0
    dropped: int = 0
    truncated: int = 0
    longest: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class DataReport:
    """What was read and selected; written to the store as ``data_report.json``."""

    pairs_uri: str
    pairs_sha256: str
    mode: str
    total_rows: int
    counts: dict[str, dict[str, int]]
    pair_budget: int
    selected: dict[str, dict[str, int]]
    length: dict[str, LengthReport]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """Check one line of a pair file (`pbt.prefs.record.PairRecord`); returns the record as a dict."""
    return parse_record(row, where).model_dump(mode="json")


def parse_pairs(data: bytes, uri: str) -> PairFile:
    """Parse and validate a pair file's bytes; errors name ``uri:line`` and the field."""
    if not data.strip():
        raise ValidationError("the pair file is empty: no preference pairs to train on", location=uri)
    rows = [r.model_dump(mode="json") for _, r in parse_records(data.decode("utf-8"), uri)]
    return PairFile(uri=uri, sha256=hashlib.sha256(data).hexdigest(), rows=rows)


def read_pairs(source: str, store: Any = None) -> PairFile:
    """Read a pair file from a local path, ``s3://bucket/key`` or ``store:key`` (the run's store).

    The lineage manifest `pbt prefs` writes beside the file is read too when it exists.
    """
    from pbt.errors import NotFoundError
    from pbt.store import open_store

    def from_store(src: Any, key: str) -> tuple[bytes, dict | None]:
        data = src.get_bytes(key)
        mkey = pairs_manifest_key(key)
        return data, (src.get_json(mkey) if src.exists(mkey) else None)

    if source.startswith("s3://"):
        bucket, _, key = source[len("s3://") :].partition("/")
        data, manifest = from_store(open_store(f"s3://{bucket}"), key)
    elif source.startswith("store:"):
        if store is None:
            store = open_store()
        key = source[len("store:") :]
        data, manifest = from_store(store, key)
        source = store.uri(key)
    else:
        path = Path(source)
        if not path.is_file():
            raise NotFoundError(f"pair file not found: {path} (field 'pairs')")
        data = path.read_bytes()
        mpath = path.with_name(pairs_manifest_name(path.name))
        manifest = json.loads(mpath.read_text(encoding="utf-8")) if mpath.is_file() else None
    pf = parse_pairs(data, source)
    pf.prefs_manifest = manifest
    return pf


def count_by_split(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = {s: Counter() for s in SPLITS}
    for row in rows:
        counts[row["split"]][row["code"] or "none"] += 1
    return {s: {k: c.get(k, 0) for k in (*CODES, "none")} for s, c in counts.items()}


def _take(rows: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = list(rows)
    rng.shuffle(rows)
    return rows[:n]


def mode_quota(mode: str, budget: int) -> dict[str, int]:
    """How many pairs of each code a mode takes from a budget (pbt: half resist, half accept)."""
    if mode == "accept":
        return {"accept": budget, "resist": 0}
    if mode == "resist":
        return {"accept": 0, "resist": budget}
    check_mode(mode, TRAIN_MODES)
    return {"accept": budget - budget // 2, "resist": budget // 2}


def select_train(
    rows: list[dict[str, Any]], mode: str, budget: int | None, seed: int
) -> tuple[list[dict[str, Any]], int]:
    """Select the training pairs of a mode (see the module docstring); returns (pairs, budget)."""
    by_code = {c: [r for r in rows if r.get("code") == c] for c in CODES}
    have = {c: len(v) for c, v in by_code.items()}
    if budget is None:
        budget = min(have.values())
        if budget == 0:
            missing = [c for c in CODES if have[c] == 0]
            raise ValidationError(
                f"the train split has {have['accept']} accept and {have['resist']} resist pairs; the shared pair "
                f"budget (the smaller count) is 0 because there are no {' or '.join(missing)} pairs. "
                f"Mode {mode!r} cannot be compared fairly; regenerate pairs or set pair_budget explicitly",
                field="pair_budget",
            )
    if budget <= 0:
        raise ValidationError(f"must be positive, got {budget}", field="pair_budget")
    quota = mode_quota(mode, budget)
    for code, need in quota.items():
        if need and not have[code]:
            raise ValidationError(
                f"mode {mode!r} needs {code} pairs but the train split has none "
                f"(accept={have['accept']}, resist={have['resist']})",
                field="mode",
            )
        if need > have[code]:
            raise ValidationError(
                f"mode {mode!r} with budget {budget} needs {need} {code} pairs but the train split has only "
                f"{have[code]} (accept={have['accept']}, resist={have['resist']}); lower pair_budget",
                field="pair_budget" if have[code] else "mode",
            )
    rng = random.Random(seed)
    selected = [r for code in CODES for r in _take(by_code[code], quota[code], rng)]
    rng.shuffle(selected)
    return selected, budget


def select_dev(
    rows: list[dict[str, Any]], policy: str, mode: str, seed: int, limit: int | None
) -> list[dict]:
    """Dev pairs for model selection.

    ``balanced``: as many resist as accept pairs (the smaller count of each, at most ``limit``
    in all); ``mode``: the training mode's kinds (pbt is balanced); ``none``: no evaluation.
    """
    if policy == "none":
        return []
    by_code = {c: [r for r in rows if r.get("code") == c] for c in CODES}
    if policy == "mode" and mode in CODES:
        quota = {c: (len(by_code[c]) if c == mode else 0) for c in CODES}
        if limit is not None:
            quota[mode] = min(quota[mode], limit)
    else:
        n = min(len(v) for v in by_code.values())
        if limit is not None:
            n = min(n, limit // 2)
        quota = {c: n for c in CODES}
    rng = random.Random(seed + 1)
    return [r for code in CODES for r in _take(by_code[code], quota[code], rng)]


def check_lengths(
    rows: list[dict[str, Any]], tokenizer: Any, max_length: int | None, policy: str, split: str
) -> tuple[list[dict[str, Any]], LengthReport]:
    """Count pairs whose prompt+response exceeds ``max_length`` tokens and apply the policy.

    ``truncate`` keeps them (the trainer cuts the end of the response), ``drop`` removes them,
    ``error`` refuses to train. A pair whose prompt alone reaches ``max_length`` leaves no response
    token to learn from, so it is dropped under every policy but ``error``.
    """
    report = LengthReport(max_length=max_length, policy=policy)
    if max_length is None:
        return rows, report
    kept = []
    for row in rows:
        prompt = _n_tokens(tokenizer, row["prompt"], add_generation_prompt=True)
        full = max(
            _n_tokens(tokenizer, row["prompt"] + row["chosen"]),
            _n_tokens(tokenizer, row["prompt"] + row["rejected"]),
        )
        report.checked += 1
        report.longest = max(report.longest, full)
        if full <= max_length:
            kept.append(row)
            continue
        report.overlong += 1
        if len(report.examples) < 5:
            report.examples.append(f"{row.get('tree_id', '?')}:{row.get('chosen_node', '?')} ({full} tokens)")
        if prompt >= max_length:
            report.prompt_too_long += 1
        if policy == "error":
            continue
        if policy == "drop" or prompt >= max_length:
            report.dropped += 1
            continue
        report.truncated += 1
        kept.append(row)
    if policy == "error" and report.overlong:
        raise ValidationError(
            f"{report.overlong} of {report.checked} {split} pairs are longer than max_length={max_length} tokens "
            f"(longest {report.longest}; e.g. {', '.join(report.examples)}); raise max_length or set "
            "overlong to 'truncate' or 'drop'",
            field="overlong",
        )
    if report.overlong:
        log.warning(
            "%d of %d %s pairs exceed max_length=%d tokens (longest %d): %d truncated, %d dropped",
            report.overlong,
            report.checked,
            split,
            max_length,
            report.longest,
            report.truncated,
            report.dropped,
        )
    return kept, report


def _n_tokens(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids)


def to_dpo_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep only what TRL's DPOTrainer reads (conversational preference format)."""
    return [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]


def to_sft_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SFT on the chosen responses: conversational prompt-completion rows."""
    return [{"prompt": r["prompt"], "completion": r["chosen"]} for r in rows]
