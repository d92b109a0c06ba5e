"""The serving agent as the pipeline's ``load`` and ``gate`` steps use it: vLLM's runtime LoRA
routes (``/v1/load_lora_adapter``, ``/v1/unload_lora_adapter``, ``/v1/models``), and, with
``serving.adapter_volume``, the shared volume the adapters are copied to.

On the volume each adapter is the folder ``<mount_path>/<store key>``. After a load the volume
keeps the ``keep`` most recently loaded adapters; an adapter loaded by this step, or one the agent
lists in ``/v1/models`` (vLLM reports each adapter's folder as its ``root``), is never removed.
Removal is confined to the volume: a folder outside it, the volume itself, or a path reached
through a link is refused.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from pbt.errors import ValidationError
from pbt.pipeline.spec import PipelineSpec
from pbt.store import ObjectStore

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


class AgentError(ValidationError):
    def __init__(self, url: str, status: int, message: str):
        super().__init__(f"{url}: HTTP {status}: {message}")
        self.status, self.detail = status, message


def _request(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    try:
        r = httpx.request(method, url, json=body, timeout=600)
    except httpx.HTTPError as exc:
        raise ValidationError(f"{url}: {type(exc).__name__}: {exc}") from None
    if r.status_code != 200:
        from pbt.backends.http import server_message

        raise AgentError(url, r.status_code, server_message(r)[:300])
    return r


def agent_base(url: str) -> str:
    url = url.rstrip("/")
    for suffix in ("/openai/v1", "/v1"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def stage_adapter(store: ObjectStore, key: str, root: str | Path) -> Path:
    """The adapter at store `key` as the folder ``root/key`` (downloaded once, renamed into place
    whole); its modification time is set to now, the order `prune_adapters` keeps by."""
    from pbt.store.base import check_key

    target = Path(root) / check_key(key)
    if not target.is_dir():
        _download(store, key, target)
    os.utime(target)
    return target


def _download(store: ObjectStore, key: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        store.get_dir(key, partial)
        if not (partial / ADAPTER_CONFIG).is_file():
            raise ValidationError(
                f"store key {key!r} holds no PEFT adapter ({ADAPTER_CONFIG} missing)", field="lora_path"
            )
        try:
            partial.rename(target)
        except OSError:
            if not target.is_dir():  # not a concurrent stager that finished first
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def load_adapter(spec: PipelineSpec, store: ObjectStore, name: str, key: str) -> str:
    """Load the adapter at store `key` into the serving agent as `name`; returns the lora_path sent.

    With ``serving.adapter_volume`` (vLLM) the adapter is first copied to the shared volume and
    lora_path is its folder there; otherwise lora_path is the store key (the pbt agent server
    downloads it). A name vLLM already holds is unloaded and loaded again (a resumed run, or a
    new promoted adapter under the same name)."""
    volume = spec.serving.adapter_volume
    path = str(stage_adapter(store, key, volume.mount_path)) if volume else key
    base = agent_base(spec.serving.agent)
    body = {"lora_name": name, "lora_path": path}
    try:
        _request("POST", f"{base}/v1/load_lora_adapter", body)
    except AgentError as exc:
        if exc.status != 400 or "already" not in exc.detail.lower():
            raise
        _request("POST", f"{base}/v1/unload_lora_adapter", {"lora_name": name})
        _request("POST", f"{base}/v1/load_lora_adapter", body)
    return path


def unload_quietly(spec: PipelineSpec, name: str) -> None:
    try:
        _request("POST", f"{agent_base(spec.serving.agent)}/v1/unload_lora_adapter", {"lora_name": name})
    except Exception as exc:  # the verdict stands either way
        log.warning("could not unload %s: %s", name, exc)


def served_paths(spec: PipelineSpec) -> set[str] | None:
    """The folders of the adapters the agent serves (``root`` of each ``/v1/models`` entry with a
    ``parent``); None when the agent does not say."""
    url = f"{agent_base(spec.serving.agent)}/v1/models"
    try:
        data = _request("GET", url).json()["data"]
        return {m["root"] for m in data if m.get("parent") and isinstance(m.get("root"), str)}
    except Exception as exc:
        log.warning("%s does not list its adapters (%s); keeping only this run's", url, exc)
        return None


def adapter_folders(root: str | Path) -> list[Path]:
    """Every adapter folder (one holding adapter_config.json) under `root`, links and partial
    downloads left out, most recently loaded first."""
    root = Path(root)
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here != root and ADAPTER_CONFIG in files:
            found.append(here)
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (here / d).is_symlink()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def inside_volume(root: str | Path, folder: str | Path) -> Path:
    """`folder` as a path strictly inside `root` (a relative path is taken under `root`); a path
    that leaves it, is the volume itself, or passes through a link is a ValidationError."""
    root_path = Path(root).resolve()
    rel = Path(folder)
    if rel.is_absolute():
        for base in (Path(root).absolute(), root_path):
            if rel.is_relative_to(base):
                rel = rel.relative_to(base)
                break
        else:
            raise ValidationError(
                f"{str(folder)!r} is outside the adapter volume {root_path}", field="adapter_volume"
            )
    if ".." in rel.parts or not rel.parts:
        raise ValidationError(
            f"{str(folder)!r} is not a folder inside the adapter volume {root_path}", field="adapter_volume"
        )
    path = root_path / rel
    if path.resolve() != path:
        raise ValidationError(
            f"{str(folder)!r} passes through a link; not removing it from {root_path}", field="adapter_volume"
        )
    return path


def remove_adapter(root: str | Path, folder: str | Path) -> None:
    """Delete one adapter folder of the volume and the folders it leaves empty (up to `root`)."""
    path = inside_volume(root, folder)
    if not (path / ADAPTER_CONFIG).is_file():
        raise ValidationError(f"{str(path)!r} is not an adapter folder ({ADAPTER_CONFIG} missing)")
    shutil.rmtree(path)
    top = Path(root).resolve()
    parent = path.parent
    while parent != top and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def prune_adapters(root: str | Path, keep: int, in_use: set[str]) -> list[Path]:
    """Remove adapter folders beyond the `keep` most recently loaded, except those in `in_use`
    (folder paths); returns the folders removed."""
    if keep < 1:
        raise ValidationError(f"keep must be >= 1 (got {keep})", field="adapter_volume.keep")
    used = {Path(p).resolve() for p in in_use}
    removed: list[Path] = []
    for folder in adapter_folders(root)[keep:]:
        if folder.resolve() in used:
            continue
        try:
            remove_adapter(root, folder)
        except (OSError, ValidationError) as exc:
            log.warning("adapter volume: not removing %s: %s", folder, exc)
            continue
        removed.append(folder)
    return removed
