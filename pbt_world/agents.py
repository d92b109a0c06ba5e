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
from pbt_world.config import AgentTrainConfig, WorldConfig, config_key
from pbt_world.files import write_world
from pbt_world.generate import World, build_world

log = logging.getLogger(__name__)

#: bump when the corpus, tokenizer or training loop changes what an agent learns
CORPUS_VERSION = "9"
AGENTS = ("a", "b")


def world_key(cfg: WorldConfig) -> str:
    return f"seed{cfg.seed}-{config_key(cfg)}"


#: options added after agents were first cached, with the value that keeps the old behaviour: they enter
#: the cache key only when set otherwise, so agents trained before the option existed stay cached
_LATER_OPTIONS = {"precision": "fp32", "hedge_unknown": 0.0}


def agents_key(world_cfg: WorldConfig, train_cfg: AgentTrainConfig) -> str:
    train = train_cfg.resolved().model_dump(mode="json")
    for name, old in _LATER_OPTIONS.items():
        if train.get(name) == old:
            del train[name]
    return config_key(world_cfg, train, extra={"corpus_version": CORPUS_VERSION})


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


def _train_worker(world_json: str, agent: str, cfg_json: str, out_dir: str, queue) -> None:
    """Child process: train one agent, report progress and the result through ``queue``."""
    from pbt_world.train import train_agent

    try:
        world = World.model_validate_json(world_json)
        cfg = AgentTrainConfig.model_validate_json(cfg_json)
        metrics = train_agent(
            world,
            agent,
            cfg,
            Path(out_dir),
            progress=lambda s, n, loss: queue.put(("progress", agent, s, n, loss)),
        )
        queue.put(("done", agent, metrics))
    except BaseException as exc:  # reported to the parent, which raises
        queue.put(("error", agent, f"{type(exc).__name__}: {exc}"))


def train_agents_parallel(
    world: World,
    agents: list[str],
    cfg: AgentTrainConfig,
    out_dirs: dict[str, Path],
    progress: Callable[[str, int, int, float], None] | None = None,
) -> dict[str, dict]:
    """Train several agents at once, one process each with ``cfg.threads // len(agents)`` threads
    (at least 1): on a small CPU, independent single-thread jobs use the cores better than one
    multi-threaded job on matrices this small."""
    import multiprocessing as mp

    if len(agents) == 1:
        from pbt_world.train import train_agent

        a = agents[0]
        cb = (lambda s, n, loss: progress(a, s, n, loss)) if progress else None
        return {a: train_agent(world, a, cfg, out_dirs[a], progress=cb)}
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    per = cfg.model_copy(update={"threads": max(1, cfg.threads // len(agents))})
    procs = {
        a: ctx.Process(
            target=_train_worker,
            args=(world.model_dump_json(by_alias=True), a, per.model_dump_json(), str(out_dirs[a]), queue),
            daemon=True,
        )
        for a in agents
    }
    for p in procs.values():
        p.start()
    results: dict[str, dict] = {}
    errors: dict[str, str] = {}
    try:
        while len(results) + len(errors) < len(agents):
            try:
                msg = queue.get(timeout=5.0)
            except Exception:  # queue.Empty: check the children are alive
                dead = [
                    a for a, p in procs.items() if not p.is_alive() and a not in results and a not in errors
                ]
                for a in dead:
                    errors[a] = f"training process exited with {procs[a].exitcode}"
                continue
            if msg[0] == "progress" and progress:
                progress(msg[1], msg[2], msg[3], msg[4])
            elif msg[0] == "done":
                results[msg[1]] = msg[2]
            elif msg[0] == "error":
                errors[msg[1]] = msg[2]
    finally:
        for p in procs.values():
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    if errors:
        raise RuntimeError(
            "; ".join(f"training world agent {a} failed: {e}" for a, e in sorted(errors.items()))
        )
    return results


def ensure_agents(
    world: World,
    train_cfg: AgentTrainConfig,
    store: ObjectStore,
    local_root: Path,
    progress: Callable[[str, int, int, float], None] | None = None,
) -> dict[str, Path]:
    """Local folders of agents ``a`` (strong) and ``b`` (weak): from the store when cached, else
    trained now (in parallel) and uploaded. ``progress(agent, step, total, loss)`` reports training."""
    train_cfg = train_cfg.resolved()
    out: dict[str, Path] = {}
    missing: list[str] = []
    for agent in AGENTS:
        prefix = agent_prefix(world.config, train_cfg, agent)
        local = local_root / agent
        out[agent] = local
        if store.exists(f"{prefix}/manifest.json"):
            if local.exists():
                shutil.rmtree(local)
            store.get_dir(f"{prefix}/model", local)
            log.info("world agent %s reused from %s", agent, store.uri(prefix))
        else:
            missing.append(agent)
    if not missing:
        return out
    with tempfile.TemporaryDirectory(prefix="pbt-world-agents-") as tmp:
        dirs = {a: Path(tmp) / a for a in missing}
        all_metrics = train_agents_parallel(world, missing, train_cfg, dirs, progress)
        for agent in missing:
            prefix = agent_prefix(world.config, train_cfg, agent)
            store.put_dir(f"{prefix}/model", dirs[agent])
            if out[agent].exists():
                shutil.rmtree(out[agent])
            shutil.copytree(dirs[agent], out[agent])
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
                    "metrics": all_metrics[agent],
                },
            )
    return out
