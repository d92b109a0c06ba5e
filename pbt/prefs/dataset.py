"""Preference datasets: modes, the split by tree (question), the pair records and the manifest (§4.6-§4.7).

Modes: ``labelled`` every pair with a label (resist or accept), ``accept``, ``resist``, ``pbt``
(accept + resist trimmed to the same count within each split, deterministic for a seed), and
``all`` (every kept sibling pair, unlabelled ones with ``code: null``; useful for inspection).

Splits are by tree, never by pair, and replicas of one question share a split: the question ids
of all valid trees read are sorted, shuffled with the seed and cut 70 / 15 / 15 (train / dev /
test), so a tree's split does not depend on the mode or on the filter, and the same inputs and
seed always give the same split (with one tree per question: the split by tree).

A record is a `pbt.prefs.record.PairRecord` (TRL's conversational preference format plus
provenance, ``tree_id`` and ``question_id`` among it).

The prompt is the dialogue up to and including the persuasion turn Q as the responding agent
sees it, with the persona prompt replaced by the standard instruction (`speaker_messages`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pbt.errors import ValidationError
from pbt.personas import PersonaSet, load_personas
from pbt.prefs.engine import Pair, PairFilterLike, analyze_tree
from pbt.prefs.record import SPLITS, Mode, check_mode
from pbt.store import atomic_write_bytes
from pbt.store.layout import pairs_manifest_name
from pbt.tree.dialogue import speaker_messages
from pbt.tree.model import Tree

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
MANIFEST_KIND = "pbt.prefs/v1"


def check_fractions(fractions: Sequence[float], field: str = "split") -> tuple[float, float, float]:
    """train/dev/test fractions: 3 non-negative numbers summing to 1, else `ValidationError` on `field`."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValidationError(
            f"split fractions must be 3 non-negative numbers summing to 1, got {list(fractions)}", field=field
        )
    return (float(fractions[0]), float(fractions[1]), float(fractions[2]))


def split_questions(
    question_ids: Iterable[str], seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> dict[str, str]:
    """Question id -> split (every tree of a question takes its question's split). Sorted,
    shuffled with `seed`, then cut: dev and test get round-half-up(fraction * n) questions each,
    train the rest."""
    check_fractions(fractions)
    ids = sorted(set(question_ids))
    random.Random(seed).shuffle(ids)
    n = len(ids)
    n_dev = math.floor(fractions[1] * n + 0.5)
    n_test = min(n - n_dev, math.floor(fractions[2] * n + 0.5))
    n_train = n - n_dev - n_test
    out = {}
    for i, question_id in enumerate(ids):
        out[question_id] = "train" if i < n_train else "dev" if i < n_train + n_dev else "test"
    return out


PbtBalance = Literal["overall", "position"]
PBT_BALANCES: tuple[str, ...] = ("overall", "position")
PairAgents = Literal["both", "a", "b"]
PAIR_AGENTS: tuple[str, ...] = ("both", "a", "b")


def _check_choice(value: str | None, choices: tuple[str, ...], what: str, field: str) -> str:
    """``None``/``""`` -> the first of ``choices``; anything not in them is a `ValidationError` naming `field`."""
    value = value or choices[0]
    if value not in choices:
        raise ValidationError(f"unknown {what} {value!r} (expected one of {', '.join(choices)})", field=field)
    return value


def check_pbt_balance(value: str | None, field: str = "pbt_balance") -> PbtBalance:
    """``None``/``""`` -> ``"overall"``; anything but overall / position is a `ValidationError`."""
    return _check_choice(value, PBT_BALANCES, "PBT balance", field)  # type: ignore[return-value]


def check_pair_agents(value: str | None, field: str = "pair_agents") -> PairAgents:
    """``None``/``""`` -> ``"both"``; anything but both / a / b is a `ValidationError` naming `field`."""
    return _check_choice(value, PAIR_AGENTS, "pair agents", field)  # type: ignore[return-value]


def select_pairs(
    pairs: Sequence[tuple[str, Pair]],
    mode: Mode,
    seed: int,
    *,
    balance: PbtBalance = "overall",
    position: Callable[[Pair], Hashable] | None = None,
) -> list[tuple[str, Pair]]:
    """Apply a mode to (split, pair) items; `pbt` trims accept and resist to the same count in
    each split with a seeded sample that keeps the original order.

    ``balance="overall"`` (§4.6) samples the larger code's pairs at random. ``"position"`` picks
    them so that, as far as the pool allows, every dialogue position (``position(pair)``: the
    speaker and the tree level) holds as many of them as of the smaller code; the rest of the
    budget is then sampled at random. Without it a position where one code dominates (the weak
    agent's first reply is mostly accept) teaches the position, not the persuasion.
    """
    check_mode(mode)
    check_pbt_balance(balance)
    if mode == "all":
        return list(pairs)
    if mode == "labelled":
        return [(s, p) for s, p in pairs if p.code is not None]
    if mode in ("accept", "resist"):
        return [(s, p) for s, p in pairs if p.code == mode]
    keep: set[int] = set()
    for split in SPLITS:
        by_code = {
            c: [i for i, (s, p) in enumerate(pairs) if s == split and p.code == c]
            for c in ("accept", "resist")
        }
        n = min(len(by_code["accept"]), len(by_code["resist"]))
        rng = random.Random(f"{seed}:{split}")
        if balance == "overall" or position is None:
            for code in ("accept", "resist"):
                keep.update(rng.sample(by_code[code], n))
            continue
        small, large = sorted(("accept", "resist"), key=lambda c: (len(by_code[c]), c))
        keep.update(by_code[small])
        keep.update(_matched_sample(by_code[small], by_code[large], n, pairs, position, rng))
    return [item for i, item in enumerate(pairs) if i in keep]


def _matched_sample(
    target: list[int],
    pool: list[int],
    n: int,
    pairs: Sequence[tuple[str, Pair]],
    position: Callable[[Pair], Hashable],
    rng: random.Random,
) -> list[int]:
    """``n`` indices of ``pool``: per position as many as ``target`` has there (when the pool has
    them), then a seeded random fill from what is left."""
    want = Counter(position(pairs[i][1]) for i in target)
    groups: dict[Hashable, list[int]] = {}
    for i in pool:
        groups.setdefault(position(pairs[i][1]), []).append(i)
    chosen: list[int] = []
    for pos in sorted(groups, key=repr):
        chosen += rng.sample(groups[pos], min(want[pos], len(groups[pos])))
    taken = set(chosen)
    rest = [i for i in pool if i not in taken]
    return chosen + rng.sample(rest, n - len(chosen))


def pair_record(
    tree: Tree, pair: Pair, split: str, personas: PersonaSet, *, merge_consecutive: bool = True
) -> dict[str, Any]:
    """The output record of one pair (TRL conversational preference format + provenance).

    With `merge_consecutive` (default) consecutive same-role prompt messages are joined by a
    blank line, so chat templates that require alternating roles accept every prompt."""
    chosen, rejected = tree.nodes[pair.chosen], tree.nodes[pair.rejected]
    instruction = personas.render_standard(tree.question.text)
    prompt = speaker_messages(tree, pair.parent, pair.agent, instruction, merge=merge_consecutive)
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen.text.strip()}],
        "rejected": [{"role": "assistant", "content": rejected.text.strip()}],
        "tree_id": tree.id,
        "question_id": tree.question.id,
        "chosen_node": pair.chosen,
        "rejected_node": pair.rejected,
        "code": pair.code,
        "chosen_score": pair.chosen_score,
        "rejected_score": pair.rejected_score,
        "split": split,
        "agent": pair.agent,
        "question": tree.question.text,
        "gold": list(tree.question.gold),
    }


@dataclass
class PrefsResult:
    """The records of one run and its counts (the manifest's ``counts``)."""

    mode: str
    seed: int
    records: list[dict[str, Any]] = field(default_factory=list)
    trees_read: int = 0
    trees_dropped_all_agree: int = 0
    trees_with_pairs: int = 0
    pairs_found: Counter = field(default_factory=Counter)  # by code ("none" for unlabelled)
    pairs_written: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SPLITS})
    trees_per_split: Counter = field(default_factory=Counter)

    def counts(self) -> dict[str, Any]:
        return {
            "trees_read": self.trees_read,
            "trees_dropped_all_agree": self.trees_dropped_all_agree,
            "trees_with_pairs": self.trees_with_pairs,
            "trees_per_split": {s: self.trees_per_split[s] for s in SPLITS},
            "pairs_found": {c: self.pairs_found[c] for c in ("resist", "accept", "none")},
            "pairs_written": {
                s: {c: self.pairs_written[s][c] for c in ("resist", "accept", "none")} for s in SPLITS
            },
            "pairs_written_total": len(self.records),
        }


def build_preferences(
    trees: Sequence[Tree],
    mode: Mode,
    *,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    pair_filter: PairFilterLike | None = None,
    personas: PersonaSet | None = None,
    merge_consecutive: bool = True,
    pbt_balance: PbtBalance = "overall",
    pair_agents: PairAgents = "both",
    eval_filter: PairFilterLike | None | Literal["same"] = "same",
) -> PrefsResult:
    """Trees -> preference records for `mode` (deterministic for the inputs and `seed`)."""
    return build_preferences_by_mode(
        trees,
        [mode],
        seed=seed,
        fractions=fractions,
        pair_filter=pair_filter,
        eval_filter=eval_filter,
        personas=personas,
        merge_consecutive=merge_consecutive,
        pbt_balance=pbt_balance,
        pair_agents=pair_agents,
    )[mode]


def build_preferences_by_mode(
    trees: Sequence[Tree],
    modes: Sequence[Mode],
    *,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    pair_filter: PairFilterLike | None = None,
    personas: PersonaSet | None = None,
    merge_consecutive: bool = True,
    pbt_balance: PbtBalance = "overall",
    pair_agents: PairAgents = "both",
    eval_filter: PairFilterLike | None | Literal["same"] = "same",
) -> dict[str, PrefsResult]:
    """`build_preferences` for several modes, analysing (and filtering) every tree once.

    ``pair_filter`` filters the trees of the train split, ``eval_filter`` those of the dev and test
    splits (``"same"``: `pair_filter`; the CLI and the orchestrator default to filtering dev and
    test, see `pbt.prefs.filters.resolve_eval_filter`).

    ``pbt_balance`` chooses how `pbt` trims the larger code (`select_pairs`); a pair's position
    is its speaker and the tree level of its reply. ``pair_agents`` keeps only the pairs of one
    agent's replies (``"a"``: agent A's, the level-0 speaker; ``"b"``; default ``"both"``, as in
    the paper); ``pairs_found`` still counts every pair mined."""
    check_pair_agents(pair_agents)
    personas = personas or load_personas()
    # replicas of one question always land in the same split; with one tree per question this
    # is the split by tree of §4.6
    by_question = split_questions((t.question.id for t in trees), seed, fractions)
    split_of = {t.id: by_question[t.question.id] for t in trees}
    mined = PrefsResult(mode="", seed=seed, trees_read=len(trees))
    mined.trees_per_split.update(split_of.values())
    found: list[tuple[str, Pair]] = []
    by_id = {}
    for tree in trees:
        by_id[tree.id] = tree
        held_out = split_of[tree.id] != "train"
        flt = pair_filter if eval_filter == "same" or not held_out else eval_filter
        analysis = analyze_tree(tree, flt)
        if analysis.dropped_all_agree:
            mined.trees_dropped_all_agree += 1
            continue
        if analysis.pairs:
            mined.trees_with_pairs += 1
        for pair in analysis.pairs:
            mined.pairs_found[pair.code or "none"] += 1
            found.append((split_of[tree.id], pair))
    found.sort(key=lambda item: item[1].tree_id)  # canonical order: the result ignores input order
    if pair_agents != "both":
        speaker = 0 if pair_agents == "a" else 1
        found = [(s, p) for s, p in found if p.agent == speaker]

    def position(pair: Pair) -> tuple[int, int]:
        return pair.agent, by_id[pair.tree_id].nodes[pair.chosen].depth

    results = {}
    for mode in modes:
        result = replace(
            mined,
            mode=mode,
            records=[],
            pairs_found=Counter(mined.pairs_found),
            pairs_written={s: Counter() for s in SPLITS},
            trees_per_split=Counter(mined.trees_per_split),
        )
        for split, pair in select_pairs(found, mode, seed, balance=pbt_balance, position=position):
            tree = by_id[pair.tree_id]
            result.records.append(
                pair_record(tree, pair, split, personas, merge_consecutive=merge_consecutive)
            )
            result.pairs_written[split][pair.code or "none"] += 1
        results[mode] = result
    return results


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def records_to_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def build_manifest(
    result: PrefsResult,
    *,
    inputs: Sequence[dict[str, Any]],
    output: str,
    output_sha256: str,
    fmt: str,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    pair_filter: str | None = None,
    skipped: Sequence[dict[str, str]] = (),
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The lineage record written beside a pairs file (kind ``pbt.prefs/v1``).

    `settings` holds any further options of the run (persona set, prompt merging)."""
    from pbt import code_version as current_code_version

    code_version = current_code_version()
    return {
        "kind": MANIFEST_KIND,
        "code_version": code_version,
        "inputs": list(inputs),
        "format": fmt,
        "mode": result.mode,
        "seed": result.seed,
        "split_fractions": dict(zip(SPLITS, fractions, strict=True)),
        "filter": pair_filter,
        "output": {"path": output, "sha256": output_sha256, "records": len(result.records)},
        "counts": result.counts(),
        "skipped_lines": list(skipped),
        "settings": dict(settings or {}),
    }


def manifest_path(out: str | Path) -> Path:
    """``pairs.jsonl`` -> ``pairs.manifest.json`` (beside the output)."""
    out = Path(out)
    return out.with_name(pairs_manifest_name(out.name))


def write_preferences(out: str | Path, data: bytes, manifest: dict[str, Any]) -> Path:
    """Write the pairs file and then its manifest, each atomically. Returns the manifest path."""
    out = Path(out)
    atomic_write_bytes(out, data)
    mpath = manifest_path(out)
    atomic_write_bytes(mpath, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return mpath
