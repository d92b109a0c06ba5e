"""End to end over loopback: the KServe agent server with the tiny model over HTTP, 20 NQ-open
questions, trees in the local store and in an S3-compatible server (moto, driven by the minio
SDK), then ExtractPreferences. Token counts and the tree shape are kept small (2-core budget)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from agent_process import AgentProcess

from pbt.config import RunConfig
from pbt.rpc import open_channel, run_config_to_proto
from pbt.store import LocalStore
from pbt.v1 import orchestrator_pb2 as pb
from pbt.v1 import orchestrator_pb2_grpc
from services.common.policy import RequestPolicy
from services.orchestrator.server import start_orchestrator

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N = 20
NODES_PER_TREE = 1 + 2 + 4  # max_turns 3, branching 1-2-2, no agreement stop


@pytest.fixture(scope="module")
def agent_server(tiny_model_dir: Path):
    with AgentProcess(tiny_model_dir, model_name="tiny", threads=1) as agent:
        yield agent


def tiny_config(agent: AgentProcess, nq: Path, store: dict | None = None) -> RunConfig:
    spec = {"endpoint": agent.openai_url, "model": "tiny", "max_in_flight": 32, "max_attempts": 4}
    return RunConfig.from_dict(
        {
            "agents": {"a": spec, "b": spec, "extractor": spec},
            "sampling": {"max_tokens": 6, "min_tokens": 2, "seed": 1},
            "extraction": {"mode": "llm", "max_tokens": 4},
            "tree": {"max_turns": 3, "branching": [1, 2, 2], "stop_on_agreement": False},
            "dataset": {"format": "nq_open", "path": str(nq)},
            "store": store or {},
            "max_trees_in_flight": N,
        }
    )


async def _build_and_extract(config: RunConfig, store, job_id: str):
    policy = RequestPolicy(  # the operator's options: agents on loopback, the dataset's folder
        agent_url_prefixes=["http://127.0.0.1:"], data_roots=[Path(config.dataset.path).parent]
    )
    server, port = await start_orchestrator(store=store, progress_interval_s=0.5, policy=policy)
    try:
        async with open_channel(f"127.0.0.1:{port}") as channel:
            stub = orchestrator_pb2_grpc.DebateOrchestratorServiceStub(channel)
            request = pb.BuildTreesRequest(config=run_config_to_proto(config), job_id=job_id, limit=N)
            events = [e async for e in stub.BuildTrees(request, timeout=240)]
            tree = await stub.GetTree(
                pb.GetTreeRequest(
                    job_id=job_id, tree_id="NQ-open-000000", store=run_config_to_proto(config).store
                )
            )
            prefs = await stub.ExtractPreferences(
                pb.ExtractPreferencesRequest(job_id=job_id, store=run_config_to_proto(config).store)
            )
            return events, json.loads(tree.tree_json), prefs
    finally:
        await server.stop(0)


def _check(events, tree, prefs) -> None:
    summary = events[-1].summary
    assert summary.progress.trees_done == N and summary.progress.nodes == N * NODES_PER_TREE
    assert summary.progress.usage.completion_tokens > 0
    assert len(tree["nodes"]) == NODES_PER_TREE
    assert tree["question"]["text"] == "when was the last time anyone was on the moon"
    assert all(n["usage"]["completion_tokens"] >= 1 and n["text"] for n in tree["nodes"])
    assert all(n["answers"][n["agent"]] is not None for n in tree["nodes"])  # extracted after every node
    assert tree["agents"][0]["model"] == "tiny"
    assert prefs.trees_read == N
    assert prefs.counts["pbt"] == prefs.pbt_pairs and prefs.pbt_pairs <= prefs.pairs


def test_tiny_model_trees_local_store_then_preferences(agent_server, data_dir: Path, tmp_path: Path) -> None:
    nq = data_dir / "nq_open" / "NQ-open.dev.jsonl"
    store = LocalStore(tmp_path / "store")
    events, tree, prefs = asyncio.run(_build_and_extract(tiny_config(agent_server, nq), store, "tiny-local"))
    _check(events, tree, prefs)
    keys = [k for k in store.list("trees/tiny-local/") if "/_manifests/" not in k]
    assert len(keys) == N
    assert store.exists("prefs/tiny-local/manifest.json") and store.exists("prefs/tiny-local/pbt.jsonl")


def test_tiny_model_trees_in_s3_then_preferences(
    agent_server, data_dir: Path, s3_env, tmp_path: Path
) -> None:
    from minio import Minio

    nq = data_dir / "nq_open" / "NQ-open.dev.jsonl"
    from pbt.store import open_store

    # the server's store is the bucket (endpoint and credentials from the environment); the
    # request picks a prefix inside it
    server_store = open_store(f"s3://{s3_env['bucket']}")
    config = tiny_config(agent_server, nq, {"url": "e2e"})
    events, tree, prefs = asyncio.run(_build_and_extract(config, server_store, "tiny-s3"))
    _check(events, tree, prefs)
    assert events[-1].summary.output_uri == f"s3://{s3_env['bucket']}/e2e/trees/tiny-s3/"
    client = Minio(
        s3_env["endpoint"].removeprefix("http://"),
        access_key=s3_env["access_key"],
        secret_key=s3_env["secret_key"],
        secure=False,
    )
    names = [o.object_name for o in client.list_objects(s3_env["bucket"], prefix="e2e/", recursive=True)]
    assert len([n for n in names if n.startswith("e2e/trees/tiny-s3/NQ-open-")]) == N
    assert "e2e/trees/tiny-s3/_manifests/shard-0-of-1.json" in names
    assert {"e2e/prefs/tiny-s3/manifest.json", "e2e/prefs/tiny-s3/pbt.jsonl"} <= set(names)
    assert not [n for n in client.list_objects(s3_env["bucket"], prefix="trees/", recursive=True)]
