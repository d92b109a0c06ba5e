"""ExtractPreferences: the trees of a job in the store -> accept / resist / PBT pairs in the store.

Store layout::

    prefs/{output_id}/{mode}.jsonl            TRL conversational preference records (mode: accept, resist, pbt)
    prefs/{output_id}/{mode}.manifest.json    pbt.prefs/v1 manifest of that file (inputs, counts, sha256)
    prefs/{output_id}/manifest.json           summary: inputs (the tree job), counts per mode, code version

The pairs come from the foundation's preference engine (`pbt.prefs.build_preferences`), the same
code as ``pbt prefs``; the split is by tree and deterministic for the seed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from pbt import code_version
from pbt.errors import NotFoundError
from pbt.orchestrate.job import check_job_id, job_prefix, list_tree_keys
from pbt.prefs import build_manifest, build_preferences
from pbt.prefs.dataset import records_to_bytes
from pbt.store import ObjectStore
from pbt.tree.io import tree_from_dict
from pbt.tree.model import Tree

log = logging.getLogger(__name__)

PREF_MODES = ("accept", "resist", "pbt")


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


def extract_preferences(
    store: ObjectStore, job_id: str, *, output_id: str | None = None, seed: int = 0
) -> PreferencesOutput:
    """Build the three pair files of PBT-METHOD §4.6 from a tree job and write them with manifests."""
    check_job_id(job_id)
    output_id = check_job_id(output_id or job_id, field="output_id")
    trees = read_job_trees(store, job_id)
    prefix = f"prefs/{output_id}"
    inputs = [{"job_id": job_id, "uri": store.uri(job_prefix(job_id).rstrip("/")) + "/", "trees": len(trees)}]
    counts: dict[str, int] = {}
    per_mode: dict[str, Any] = {}
    for mode in PREF_MODES:
        result = build_preferences(trees, mode, seed=seed)  # type: ignore[arg-type]
        data = records_to_bytes(result.records)
        key = f"{prefix}/{mode}.jsonl"
        manifest = build_manifest(
            result,
            inputs=inputs,
            output=store.uri(key),
            output_sha256=hashlib.sha256(data).hexdigest(),
            fmt="native",
        )
        store.put_bytes(key, data)
        store.put_json(f"{prefix}/{mode}.manifest.json", manifest)
        counts[mode] = len(result.records)
        for split, by_code in result.counts()["pairs_written"].items():
            counts[f"{mode}.{split}"] = sum(by_code.values())
        per_mode[mode] = {"uri": store.uri(key), "records": len(result.records), "counts": result.counts()}
    first = build_preferences(trees, "all", seed=seed)
    counts["pairs_found"] = len(first.records)
    counts["trees_dropped_all_agree"] = first.trees_dropped_all_agree
    summary = {
        "kind": "pbt.prefs.job/v1",
        "job_id": job_id,
        "output_id": output_id,
        "seed": seed,
        "inputs": inputs,
        "modes": per_mode,
        "counts": counts,
        "code_version": code_version(),
    }
    store.put_json(f"{prefix}/manifest.json", summary)
    log.info("preferences of job %s -> %s: %s", job_id, store.uri(prefix), counts)
    return PreferencesOutput(
        output_uri=store.uri(prefix) + "/",
        manifest_uri=store.uri(f"{prefix}/manifest.json"),
        trees_read=len(trees),
        counts=counts,
        manifest=summary,
    )
