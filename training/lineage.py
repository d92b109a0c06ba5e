"""The lineage manifest of a training run: which pairs, which base model, which code made it."""

from __future__ import annotations

import hashlib
import importlib.metadata
import time
from pathlib import Path
from typing import Any

SCHEMA = "pbt.training-run/v1"
PACKAGES = ("pbt", "torch", "transformers", "trl", "peft", "accelerate")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def dataset_id(pairs_uri: str, explicit: str | None = None) -> str:
    """A readable id for the pair file: explicit, else '<parent folder>/<file stem>'."""
    if explicit:
        return explicit
    parts = pairs_uri.rstrip("/").split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    return f"{parts[-2]}/{stem}" if len(parts) > 1 and parts[-2] else stem


def model_fingerprint(local_dir: str | Path) -> str | None:
    """sha256 of the model folder's config.json (cheap; weights are identified by location)."""
    path = Path(local_dir) / "config.json"
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_manifest(
    *,
    run_id: str,
    stage: str,
    store_url: str,
    pairs: dict[str, Any],
    base_model: dict[str, Any],
    outputs: dict[str, str | None],
    world_size: int,
    resumed_from_step: int | None,
    code: str,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "stage": stage,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "store": store_url,
        "inputs": {"pairs": pairs, "base_model": base_model},
        "code": {"version": code, "packages": package_versions()},
        "outputs": outputs,
        "world_size": world_size,
        "resumed_from_step": resumed_from_step,
    }
