"""World agents cached in the object store, keyed by world seed and training settings.

Layout: ``world/<world_key>/world/...`` (the world files) and
``world/<world_key>/agents/<train_key>/{a,b}/...`` (HF model folders) with a
``manifest.json`` next to each: its lineage (world config, train config, corpus version, code
version, metrics). A folder is only written to the store after its training finished, so a
crash never leaves a half agent that later runs would reuse.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pbt import code_version
from pbt.store import ObjectStore
from pbt.world.config import AgentTrainConfig, WorldConfig, config_key
from pbt.world.generate import World, build_world, write_world

log = logging.getLogger(__name__)

#: bump when the corpus, tokenizer or training loop changes what an agent learns
CORPUS_VERSION = "5"
AGENTS = ("a", "b")


def world_key(cfg: WorldConfig) -> str:
    return f"seed{cfg.seed}-{config_key(cfg)}"


def agents_key(world_cfg: WorldConfig, train_cfg: AgentTrainConfig) -> str:
    return config_key(world_cfg, train_cfg, extra={"corpus_version": CORPUS_VERSION})


def world_prefix(cfg: WorldConfig) -> str:
    return f"world/{world_key(cfg)}"


def agent_prefix(world_cfg: WorldConfig, train_cfg: AgentTrainConfig, agent: str) -> str:
    return f"{world_prefix(world_cfg)}/agents/{agents_key(world_cfg, train_cfg)}/{agent}"


def ensure_world(cfg: WorldConfig, store: ObjectStore, local_dir: Path) -> tuple[World, Path]:
    """Build the world into ``local_dir`` (deterministic, cheap) and mirror it to the store once."""
    world = build_world(cfg)
    write_world(world, local_dir)
    prefix = world_prefix(cfg)
    if not store.exists(f"{prefix}/manifest.json"):
        store.put_dir(f"{prefix}/files", local_dir)
        store.put_json(
            f"{prefix}/manifest.json",
            {
                "schema": "pbt.world-manifest/v1",
                "stage": "world",
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "inputs": {"world_config": cfg.model_dump(mode="json")},
                "code": {"version": code_version()},
                "outputs": {"files": store.uri(f"{prefix}/files")},
                "counts": {
                    "facts": len(world.facts),
                    "a_knows": len(world.known("a")),
                    "b_knows": len(world.known("b")),
                },
            },
        )
    return world, local_dir


def ensure_agents(
    world: World,
    train_cfg: AgentTrainConfig,
    store: ObjectStore,
    local_root: Path,
    progress: Callable[[str, int, int, float], None] | None = None,
) -> dict[str, Path]:
    """Local folders of agents ``a`` (strong) and ``b`` (weak): from the store when cached, else
    trained now and uploaded. ``progress(agent, step, total, loss)`` reports training."""
    from pbt.world.train import train_agent

    out: dict[str, Path] = {}
    for agent in AGENTS:
        prefix = agent_prefix(world.config, train_cfg, agent)
        local = local_root / agent
        if store.exists(f"{prefix}/manifest.json"):
            if local.exists():
                shutil.rmtree(local)
            store.get_dir(f"{prefix}/model", local)
            log.info("world agent %s reused from %s", agent, store.uri(prefix))
            out[agent] = local
            continue
        with tempfile.TemporaryDirectory(prefix=f"pbt-world-{agent}-") as tmp:
            cb = (lambda s, n, loss, _a=agent: progress(_a, s, n, loss)) if progress else None
            metrics = train_agent(world, agent, train_cfg, Path(tmp), progress=cb)
            store.put_dir(f"{prefix}/model", tmp)
            if local.exists():
                shutil.rmtree(local)
            shutil.copytree(tmp, local)
        store.put_json(
            f"{prefix}/manifest.json",
            {
                "schema": "pbt.world-agent/v1",
                "stage": "world-agent",
                "agent": agent,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "inputs": {
                    "world": store.uri(f"{world_prefix(world.config)}/manifest.json"),
                    "world_config": world.config.model_dump(mode="json"),
                    "train_config": train_cfg.model_dump(mode="json"),
                    "corpus_version": CORPUS_VERSION,
                },
                "code": {"version": code_version()},
                "outputs": {"model": store.uri(f"{prefix}/model")},
                "metrics": metrics,
            },
        )
        out[agent] = local
    return out
