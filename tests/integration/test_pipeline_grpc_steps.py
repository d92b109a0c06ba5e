"""The `trees` and `prefs` steps against a real orchestrator over gRPC (BuildTrees, ExtractPreferences),
as in the cluster: the spec names the orchestrator's address, the step sends the run config."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
import yaml

from pbt.backends.scripted import ScriptedBackend
from pbt.pipeline.run import read_record, run_step
from pbt.store import LocalStore
from services.common.policy import RequestPolicy
from services.orchestrator.server import start_orchestrator

pytestmark = pytest.mark.integration

EXAMPLE = Path("examples/pipeline")


class Orchestrator:
    """`start_orchestrator` on its own event loop in a thread (the steps run their own loops)."""

    def __init__(self, store: LocalStore):
        answers = {r: json.loads((EXAMPLE / f"agent-{r}.json").read_text()) for r in ("a", "b")}
        self.backends = {
            "a": ScriptedBackend(answers["a"], persuasion=0.5, seed=1, name="A"),
            "b": ScriptedBackend(answers["b"], persuasion=0.5, seed=2, name="B"),
        }
        self.store = store
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Orchestrator:
        self.thread.start()
        self.server, self.port = asyncio.run_coroutine_threadsafe(
            start_orchestrator(
                store=self.store,
                backend_factory=lambda role, agent: self.backends[role],
                policy=RequestPolicy(allow_local_backends=True),
            ),
            self.loop,
        ).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_trees_and_prefs_steps_over_grpc(tmp_path):
    store = LocalStore(tmp_path / "store")
    spec = yaml.safe_load((EXAMPLE / "tiny.yaml").read_text())
    spec["trees"]["run_config"]["agents"] = {"a": {"endpoint": "scripted:a"}, "b": {"endpoint": "scripted:b"}}
    with Orchestrator(store) as orch:
        spec["cluster"]["orchestrator"] = f"127.0.0.1:{orch.port}"
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
        run_step("init", str(path), "grpc-1", store=store)
        ref = "store:pipelines/grpc-1/spec.yaml"
        assert run_step("trees", ref, "grpc-1", store=store) == {"trees": "grpc-1-trees"}
        assert len([k for k in store.list("trees/grpc-1-trees/") if "_manifests" not in k]) == 24
        assert run_step("prefs", ref, "grpc-1", store=store) == {"pairs": "prefs/grpc-1-prefs/labelled.jsonl"}
    manifest = store.get_json("prefs/grpc-1-prefs/manifest.json")
    assert manifest["counts"]["pbt.train"] > 0 and manifest["counts"]["accept"] > 0
    assert read_record(store, "grpc-1", "prefs")["outputs"]["pairs"] == "prefs/grpc-1-prefs/labelled.jsonl"
