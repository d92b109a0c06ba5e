"""Kill the orchestrator process mid-job (SIGKILL), restart it, resume the job id: one tree per question."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from pbt.config import RunConfig
from pbt.net import free_port, wait_for_port
from pbt.rpc import open_channel, run_config_to_proto
from pbt.store import LocalStore
from pbt.v1 import orchestrator_pb2 as pb
from pbt.v1 import orchestrator_pb2_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N_QUESTIONS = 10


def start_server(store: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pbt",
            "serve",
            "orchestrator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--store",
            str(store),
            "--progress-interval",
            "0.1",
            "--allow-local-backends",  # scripted: agent specs
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    wait_for_port(port, timeout=60, proc=proc)
    return proc


def test_kill_and_resume(tmp_path: Path) -> None:
    answers_a = tmp_path / "a.json"
    answers_b = tmp_path / "b.json"
    answers_a.write_text(json.dumps({"capital of France": "Paris"}))
    answers_b.write_text(json.dumps({"capital of France": "Lyon"}))
    questions = [
        {"id": f"q{i:02d}", "question": f"({i}) What is the capital of France?", "answers": ["Paris"]}
        for i in range(N_QUESTIONS)
    ]
    config = RunConfig.from_dict(
        {
            "agents": {  # the real backend factory: scripted specs with simulated latency
                "a": {"endpoint": f"scripted:{answers_a}?delay=0.03"},
                "b": {"endpoint": f"scripted:{answers_b}?delay=0.03"},
            },
            "extraction": {"mode": "rules"},
            "dataset": {"format": "inline", "questions": questions},
            "max_trees_in_flight": 2,
        }
    )
    request = pb.BuildTreesRequest(config=run_config_to_proto(config), job_id="crash-1")
    store_dir = tmp_path / "store"
    port = free_port()

    async def build_until(
        proc: subprocess.Popen | None, kill_after: int | None
    ) -> list[pb.BuildTreesResponse]:
        events = []
        async with open_channel(f"127.0.0.1:{port}") as channel:
            stub = orchestrator_pb2_grpc.DebateOrchestratorServiceStub(channel)
            try:
                async for event in stub.BuildTrees(request, timeout=120):
                    events.append(event)
                    built = sum(e.WhichOneof("event") == "tree" for e in events)
                    if kill_after is not None and built >= kill_after:
                        proc.send_signal(signal.SIGKILL)  # no grace, no cleanup
                        proc.wait(timeout=10)
            except grpc.aio.AioRpcError as exc:
                assert kill_after is not None, exc
                assert exc.code() in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.INTERNAL,
                    grpc.StatusCode.UNKNOWN,
                )
        return events

    proc = start_server(store_dir, port)
    try:
        first = asyncio.run(build_until(proc, kill_after=2))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    store = LocalStore(store_dir)
    done_before = [k for k in store.list("trees/crash-1/") if "/_manifests/" not in k]
    assert 2 <= len(done_before) < N_QUESTIONS, "the kill should land mid-job"
    assert "summary" not in {e.WhichOneof("event") for e in first}

    proc = start_server(store_dir, port)
    try:
        second = asyncio.run(build_until(None, kill_after=None))
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful stop
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    started = second[0].started
    assert started.trees_skipped == len(done_before) and started.trees_total == N_QUESTIONS
    built_again = {e.tree.tree_id for e in second if e.WhichOneof("event") == "tree"}
    assert built_again.isdisjoint(Path(k).stem for k in done_before)
    keys = sorted(k for k in store.list("trees/crash-1/") if "/_manifests/" not in k)
    assert keys == [f"trees/crash-1/q{i:02d}.json" for i in range(N_QUESTIONS)]
    for key in keys:
        tree = store.get_json(key)
        assert tree["id"] == Path(key).stem and len(tree["nodes"]) == 21
    manifest = store.get_json("trees/crash-1/_manifests/shard-0-of-1.json")
    assert manifest["status"] == "complete" and manifest["counts"]["trees_skipped"] == len(done_before)
