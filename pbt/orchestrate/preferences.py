"""ExtractPreferences: the trees of a job in the store -> labelled / accept / resist / PBT pairs in the store.

Store layout::

    prefs/{output_id}/{mode}.jsonl            pair records (mode: labelled, accept, resist, pbt)
    prefs/{output_id}/{mode}.manifest.json    pbt.prefs/v1 manifest of that file (inputs, counts, sha256)
    prefs/{output_id}/manifest.json           summary: inputs (the tree job), counts per mode, code version

The pairs come from the foundation's preference engine (`pbt.prefs.build_preferences`), the same
code as ``pbt prefs``; the split is by tree (replicas of a question together) and deterministic
for the seed; every tree is analysed once for all modes. Training reads the ``labelled`` file
and takes each variant's pairs from it with one pair budget (`training.data.select_train`): the
``pbt`` file is the §4.6 dataset for other trainers and the viewer, not balanced again. Every prompt starts
with the standard instruction of the persona set the trees were built with (read from the job's
manifest, PBT-METHOD §4.7), so pairs of trees built with a custom persona file are in the same
words as the trees themselves.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pbt import code_version
from pbt.config import PersonasConfig
from pbt.errors import NotFoundError, PbtError, ValidationError
from pbt.orchestrate.job import check_job_id, job_prefix, list_tree_keys
from pbt.personas import PersonaSet
from pbt.prefs import build_manifest, build_preferences_by_mode, make_pair_filter
from pbt.prefs.dataset import (
    DEFAULT_FRACTIONS,
    check_fractions,
    check_pair_agents,
    check_pbt_balance,
    records_to_bytes,
)
from pbt.prefs.filters import resolve_eval_filter
from pbt.store import ObjectStore, layout
from pbt.tree.model import Tree
from pbt.tree.validate import tree_from_dict

log = logging.getLogger(__name__)

PREF_MODES = ("labelled", "accept", "resist", "pbt")


@dataclass
class PreferencesOutput:
    output_uri: str
    manifest_uri: str
    trees_read: int
    counts: dict[str, int]  # pairs per mode and per mode.split
    manifest: dict[str, Any]


def read_job_trees(store: ObjectStore, job_id: str) -> list[Tree]:
    keys = list_tree_keys(store, job_id)
    if not keys:
        raise NotFoundError(f"no trees under {store.uri(job_prefix(job_id).rstrip('/'))}/ (job {job_id!r})")
    return [tree_from_dict(store.get_json(key), location=store.uri(key)) for key in keys]


def job_persona_set(store: ObjectStore, job_id: str) -> tuple[PersonaSet | None, str | None]:
    """The persona set a tree job was built with (from its first shard manifest) and that manifest's URI.

    (None, None) when the job has no manifest (trees written by other tools): the caller falls back
    to the bundled set. A manifest whose persona set cannot be loaded is an error naming both."""
    keys = sorted(store.list(layout.shard_manifests_prefix(job_id)))
    if not keys:
        return None, None
    manifest = store.get_json(keys[0])
    spec = (manifest.get("config") or {}).get("personas") or {}
    try:
        return PersonasConfig.model_validate(spec).load(), store.uri(keys[0])
    except (PbtError, ValueError, OSError) as exc:
        raise ValidationError(
            f"the persona set of tree job {job_id!r} ({spec.get('file') or 'bundled'}, recorded in "
            f"{store.uri(keys[0])}) cannot be loaded: {exc}; the pairs' standard instruction comes from it",
            field="job_id",
        ) from None


def extract_preferences(
    store: ObjectStore,
    job_id: str,
    *,
    output_id: str | None = None,
    seed: int = 0,
    pair_filter: str | None = None,
    fractions: Sequence[float] | None = None,
    pbt_balance: str | None = None,
    pair_agents: str | None = None,
    eval_filter: str | None = None,
    judge: Any = None,
    judge_info: dict[str, Any] | None = None,
) -> PreferencesOutput:
    """Build the pair files of PBT-METHOD §4.6 (and the labelled file training reads) from a tree job and write them with manifests.

    `pair_filter` names the §4.5 filter (`pbt.prefs.PAIR_FILTERS`; None or ``"none"``: no filtering);
    `fractions` are the train/dev/test shares of the split (default 0.7 / 0.15 / 0.15);
    `pbt_balance` how the PBT file trims the larger code (`pbt.prefs.PBT_BALANCES`; default overall);
    `pair_agents` whose replies become pairs (`pbt.prefs.PAIR_AGENTS`; default both);
    `eval_filter` the filter of the dev and test splits (`pbt.prefs.filters.EVAL_PAIR_FILTERS`; None
    or ``"auto"``: filtered by default, `resolve_eval_filter`); `judge` the judge agent's
    `ChatBackend` for the ``judge`` filter (`judge_info`: its endpoint and model, for the manifest).
    """
    check_job_id(job_id)
    output_id = check_job_id(output_id or job_id, field="output_id")
    filter_name = pair_filter or "none"
    if eval_filter and eval_filter not in ("auto", "none", "rules", "judge"):
        raise ValidationError(
            f"unknown pair filter {eval_filter!r}; expected auto, none, rules or judge",
            field="eval_pair_filter",
        )
    eval_name = resolve_eval_filter(filter_name, eval_filter, has_judge=judge is not None)
    train_filter = make_pair_filter(filter_name, field="pair_filter", judge=judge)
    held_out_filter = make_pair_filter(eval_name, field="eval_pair_filter", judge=judge)
    split_fractions = check_fractions(fractions or DEFAULT_FRACTIONS, field="split_fractions")
    balance = check_pbt_balance(pbt_balance)
    agents = check_pair_agents(pair_agents)
    trees = read_job_trees(store, job_id)
    personas, personas_from = job_persona_set(store, job_id)
    if personas is None:
        log.warning(
            "job %s has no manifest: pairs use the bundled persona set's standard instruction", job_id
        )
    settings = {
        "personas": {"name": personas.name if personas else None, "from": personas_from},
        "pbt_balance": balance,
        "pair_agents": agents,
        "eval_filter": eval_name,
        "judge": judge_info if judge is not None else None,
    }
    prefix = layout.prefs_prefix(output_id)
    inputs = [{"job_id": job_id, "uri": store.uri(job_prefix(job_id).rstrip("/")) + "/", "trees": len(trees)}]
    counts: dict[str, int] = {}
    per_mode: dict[str, Any] = {}
    results = build_preferences_by_mode(
        trees,
        [*PREF_MODES, "all"],  # type: ignore[list-item]
        seed=seed,
        fractions=split_fractions,
        pair_filter=train_filter,
        eval_filter=held_out_filter,
        personas=personas,
        pbt_balance=balance,
        pair_agents=agents,
    )
    for mode in PREF_MODES:
        result = results[mode]
        data = records_to_bytes(result.records)
        key = layout.pairs_key(output_id, mode)
        manifest = build_manifest(
            result,
            inputs=inputs,
            output=store.uri(key),
            output_sha256=hashlib.sha256(data).hexdigest(),
            fmt="native",
            fractions=split_fractions,
            pair_filter=filter_name,
            settings=settings,
        )
        store.put_bytes(key, data)
        store.put_json(layout.pairs_manifest_key(key), manifest)
        counts[mode] = len(result.records)
        for split, by_code in result.counts()["pairs_written"].items():
            counts[f"{mode}.{split}"] = sum(by_code.values())
        per_mode[mode] = {"uri": store.uri(key), "records": len(result.records), "counts": result.counts()}
    first = results["all"]
    counts["pairs_found"] = sum(first.pairs_found.values())  # mined, before pair_agents narrows the files
    counts["trees_dropped_all_agree"] = first.trees_dropped_all_agree
    summary = {
        "kind": "pbt.prefs.job/v1",
        "job_id": job_id,
        "output_id": output_id,
        "seed": seed,
        "filter": filter_name,
        "eval_filter": eval_name,
        "split_fractions": list(split_fractions),
        "inputs": inputs,
        "modes": per_mode,
        "counts": counts,
        "code_version": code_version(),
    }
    store.put_json(layout.prefs_manifest_key(output_id), summary)
    log.info("preferences of job %s -> %s: %s", job_id, store.uri(prefix), counts)
    return PreferencesOutput(
        output_uri=store.uri(prefix) + "/",
        manifest_uri=store.uri(layout.prefs_manifest_key(output_id)),
        trees_read=len(trees),
        counts=counts,
        manifest=summary,
    )
