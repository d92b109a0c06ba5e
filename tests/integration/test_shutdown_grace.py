"""Every server stops within its configured grace on SIGTERM, even with work in flight (issue #17)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from agent_process import AgentProcess

from pbt.config import RunConfig
from pbt.net import free_port, wait_for_port
from pbt.rpc import run_config_to_proto
from pbt.v1 import evaluator_pb2, evaluator_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]
GRACE_S = 1.0
MARGIN_S = 8.0  # process exit after the grace: interpreter shutdown, thread joins


def _serve(name: str, tmp_path: Path, port: int) -> subprocess.Popen:
    args = [sys.executable, "-m", "pbt", "serve", name, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--store", str(tmp_path / "store"), "--grace", str(GRACE_S), "--allow-local-backends"]
    args += ["--data-root", str(tmp_path)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_port(port, timeout=60, proc=proc)
    return proc


def _call_in_background(target, request) -> threading.Thread:
    def run() -> None:
        try:
            for _ in target(request, timeout=120):
                pass
        except grpc.RpcError:
            pass  # the server went away: expected

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _stop_timed(proc: subprocess.Popen) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=GRACE_S + MARGIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail("the server did not stop within its grace after SIGTERM")
    return time.monotonic() - started


def test_orchestrator_and_evaluator_stop_within_grace_with_calls_in_flight(tmp_path: Path) -> None:
    questions = [
        {"id": f"q{i}", "question": f"({i}) capital of France?", "answers": ["Paris"]} for i in range(50)
    ]
    slow = {"endpoint": "scripted:?delay=0.5"}
    config = RunConfig.from_dict(
        {
            "agents": {"a": slow, "b": slow},
            "extraction": {"mode": "rules"},
            "dataset": {"format": "inline", "questions": questions},
            "max_trees_in_flight": 2,
        }
    )
    (tmp_path / "q.jsonl").write_text(
        "".join(json.dumps({"question": q["question"], "answer": ["Paris"]}) + "\n" for q in questions)
    )
    eval_request = evaluator_pb2.RunEvaluationRequest(
        config_yaml=json.dumps(
            {
                "eval_id": "slow",
                "models": [{"name": "m", "endpoint": "scripted:?delay=0.5"}],
                "seeds": [1],
                "suites": {"are_you_sure": {"questions": str(tmp_path / "q.jsonl")}},
                "concurrency": 1,
            }
        )
    )
    for name in ("orchestrator", "evaluator"):
        port = free_port()
        proc = _serve(name, tmp_path, port)
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            if name == "orchestrator":
                stub = orchestrator_pb2_grpc.DebateOrchestratorServiceStub(channel)
                thread = _call_in_background(
                    stub.BuildTrees,
                    orchestrator_pb2.BuildTreesRequest(config=run_config_to_proto(config), job_id="slow"),
                )
            else:
                stub = evaluator_pb2_grpc.EvaluatorServiceStub(channel)
                thread = _call_in_background(stub.RunEvaluation, eval_request)
            time.sleep(2.0)  # the call is under way
            assert thread.is_alive(), "the call ended before the signal"
            took = _stop_timed(proc)
            channel.close()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        assert took <= GRACE_S + MARGIN_S, (name, took)
        assert proc.returncode == 0, (
            name,
            proc.returncode,
            proc.stderr.read().decode()[-2000:] if proc.stderr else "",
        )


def test_agent_server_stops_within_grace_with_a_request_in_flight(tiny_model_dir: Path) -> None:
    agent = AgentProcess(tiny_model_dir, model_name="tiny", extra_args=("--grace", str(GRACE_S)))
    with agent:
        body = {
            "messages": [{"role": "user", "content": "Tell me a story."}],
            "n": 64,
            "max_tokens": 200,
            "min_tokens": 200,
        }

        def post() -> None:
            try:
                httpx.post(f"{agent.openai_url}/chat/completions", json=body, timeout=120)
            except httpx.HTTPError:
                pass  # the server went away: expected

        thread = threading.Thread(target=post, daemon=True)
        thread.start()
        time.sleep(1.0)
        took = _stop_timed(agent.proc)
    assert took <= GRACE_S + MARGIN_S
