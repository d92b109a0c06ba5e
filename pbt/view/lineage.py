"""Where a viewed artifact came from: store keys of URIs, and the adapter <- training run <- pairs
<- trees chain the eval and demo sites show for each model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pbt.store import ObjectStore, layout


def key_of(store: ObjectStore, uri: str | None) -> str | None:
    """The store key of a URI of this store (``store.uri(key)``, ``store:key`` or a bare key), else None."""
    if not uri:
        return None
    if uri.startswith("store:"):
        return uri[len("store:") :]
    base = store.url.rstrip("/") + "/"
    if uri.startswith(base):
        return uri[len(base) :]
    if "://" not in uri and not uri.startswith("/"):
        return uri
    return None


def training_lineage(
    store: ObjectStore, manifest_key: str, links: Mapping[tuple[str, str], str]
) -> list[dict[str, Any]]:
    """adapter <- training run <- pairs <- trees, from a training run's manifest (``pbt.training-run/v1``)."""
    chain: list[dict[str, Any]] = []
    m = store.get_json(manifest_key)
    outputs = m.get("outputs") or {}
    pairs = (m.get("inputs") or {}).get("pairs") or {}
    if outputs.get("adapter"):
        chain.append(
            {
                "kind": "adapter",
                "title": outputs["adapter"],
                "uri": store.uri(outputs["adapter"]),
                "facts": {},
            }
        )
    chain.append(
        {
            "kind": "training run",
            "title": m.get("run_id", manifest_key),
            "uri": store.uri(manifest_key),
            "facts": {
                "stage": m.get("stage"),
                "base model": ((m.get("inputs") or {}).get("base_model") or {}).get("location"),
                "created": m.get("created_at"),
                "code": (m.get("code") or {}).get("version"),
            },
        }
    )
    pairs_key = key_of(store, pairs.get("uri"))
    prefs_id = (
        pairs_key.split("/")[1]
        if pairs_key and pairs_key.startswith("prefs/") and pairs_key.count("/") == 2
        else None
    )
    chain.append(
        {
            "kind": "pairs",
            "title": pairs.get("dataset_id") or pairs.get("uri"),
            "href": links.get(("prefs", prefs_id)) if prefs_id else None,
            "uri": pairs.get("uri"),
            "facts": {
                "mode": pairs.get("mode"),
                "selected": pairs.get("selected"),
                "sha256": (pairs.get("sha256") or "")[:12],
            },
        }
    )
    if prefs_id and store.exists(layout.prefs_manifest_key(prefs_id)):
        summary = store.get_json(layout.prefs_manifest_key(prefs_id))
        job = summary.get("job_id")
        chain.append(
            {
                "kind": "trees",
                "title": f"tree job {job}",
                "href": links.get(("trees", job)),
                "uri": (summary.get("inputs") or [{}])[0].get("uri"),
                "facts": {"trees": (summary.get("inputs") or [{}])[0].get("trees")},
            }
        )
    return chain


def model_lineage(
    store: ObjectStore,
    name: str,
    recorded: Mapping[str, Any] | None,
    training: Mapping[str, str],
    links: Mapping[tuple[str, str], str],
) -> list[dict[str, Any]]:
    """A model's lineage: from a training manifest (given, or named in its recorded lineage), else the
    recorded lineage as it stands."""
    manifest = training.get(name)
    for k in ("training_manifest", "manifest", "training_run"):
        if manifest is None and recorded and isinstance(recorded.get(k), str):
            manifest = key_of(store, recorded[k])
    if manifest and store.exists(manifest):
        return training_lineage(store, manifest, links)
    if recorded:
        return [{"kind": "recorded", "title": name, "facts": dict(recorded)}]
    return []
