"""No server secret ever leaves in a request a client shaped (issue #17, security items 1 and 2).

A capture server on 127.0.0.1 records every HTTP request that reaches it (request line, headers,
body) and answers 400 with a recognisable body. The orchestrator and the evaluator run in
process with secrets in their environment: an AWS key, a variable requests try to name with
``api_key_env``, and the operator's API key of another agent. Requests then try every way we
know to get a secret sent to the capture server or read back: ``api_key_env`` on every agent
field, the capture URL when it is not allow-listed, credentials in the URL, a store endpoint (an
S3 client signs with the server's AWS key), YAML configs. The capture server, when allow-listed,
is only ever called without a secret, and its error body never reaches the caller.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_servers import both_servers, outcome

from pbt.store import LocalStore
from pbt.v1 import common_pb2, evaluator_pb2, orchestrator_pb2
from services.common.policy import RequestPolicy

pytestmark = pytest.mark.integration

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-SECRET-4f1c9e",
    "AWS_ACCESS_KEY_ID": "aws-ID-77ab01",
    "PBT_TEST_SECRET": "plain-SECRET-90d2aa",
    "OPERATOR_AGENT_KEY": "operator-SECRET-1b2c3d",
}
UPSTREAM_BODY = "UPSTREAM-ERROR-BODY-internal-details"


class Capture:
    """A loopback HTTP server that records requests and answers 400 with UPSTREAM_BODY."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                capture.requests.append(f"{self.requestline}\n{self.headers}\n{body}")
                payload = json.dumps({"error": {"message": UPSTREAM_BODY}}).encode()
                self.send_response(400)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_HEAD = _record  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Capture:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _agent(endpoint: str, **kw) -> common_pb2.AgentSpec:
    return common_pb2.AgentSpec(endpoint=endpoint, model="m", max_attempts=1, **kw)


def _run_config(a: common_pb2.AgentSpec, b: common_pb2.AgentSpec, **kw) -> orchestrator_pb2.RunConfig:
    return orchestrator_pb2.RunConfig(
        agents=orchestrator_pb2.Agents(a=a, b=b, **kw),
        extraction=orchestrator_pb2.ExtractionSpec(mode=orchestrator_pb2.EXTRACTION_MODE_RULES),
        dataset=orchestrator_pb2.DatasetSpec(
            format=orchestrator_pb2.DATASET_FORMAT_INLINE,
            questions=[orchestrator_pb2.QuestionItem(id="q", question="What is 2+2?", answers=["4"])],
        ),
    )


def _debate(a: common_pb2.AgentSpec, b: common_pb2.AgentSpec) -> orchestrator_pb2.RunDebateRequest:
    return orchestrator_pb2.RunDebateRequest(
        question="What is 2+2?",
        agents=[
            orchestrator_pb2.DebateAgent(name="x", agent=a),
            orchestrator_pb2.DebateAgent(name="y", agent=b),
        ],
        extraction=orchestrator_pb2.ExtractionSpec(mode=orchestrator_pb2.EXTRACTION_MODE_RULES),
        max_turns=1,
    )


def _evaluation(model: common_pb2.AgentSpec, **config) -> evaluator_pb2.RunEvaluationRequest:
    return evaluator_pb2.RunEvaluationRequest(
        config=evaluator_pb2.EvaluationConfig(
            eval_id="leak",
            models=[evaluator_pb2.EvaluatedModel(name="m", agent=model)],
            seeds=[1],
            suites=evaluator_pb2.EvaluationSuites(
                are_you_sure=evaluator_pb2.AreYouSureSuiteSpec(questions="q.jsonl", limit=1)
            ),
            **config,
        )
    )


def _attempts(capture: str, allowed: str) -> list[tuple[str, str, object]]:
    """(service, method, request) of every leak attempt; `capture` is the capture server's URL,
    `allowed` an allow-listed agent name."""
    out: list[tuple[str, str, object]] = []
    env_names = ["PBT_TEST_SECRET", "AWS_SECRET_ACCESS_KEY", "OPERATOR_AGENT_KEY"]
    endpoints = [
        capture + "/v1",
        capture.replace("http://", "http://user:pw@") + "/v1",
        capture.replace("127.0.0.1", "localhost") + "/v1",
        capture.replace("http://127.0.0.1", "http://[::ffff:127.0.0.1]") + "/v1",
    ]
    good = _agent(allowed)
    for env in env_names:  # api_key_env on every agent field, towards allowed and other agents
        for ep in [allowed, capture + "/v1"]:
            bad = _agent(ep, api_key_env=env)
            out += [
                ("orch", "RunDebate", _debate(bad, good)),
                ("orch", "RunDebate", _debate(good, bad)),
                ("orch", "BuildTrees", orchestrator_pb2.BuildTreesRequest(config=_run_config(bad, good))),
                ("orch", "BuildTrees", orchestrator_pb2.BuildTreesRequest(config=_run_config(good, bad))),
                (
                    "orch",
                    "BuildTrees",
                    orchestrator_pb2.BuildTreesRequest(config=_run_config(good, good, extractor=bad)),
                ),
                ("eval", "RunEvaluation", _evaluation(bad)),
                (
                    "eval",
                    "RunEvaluation",
                    _evaluation(
                        good,
                        extractor=evaluator_pb2.ExtractorSpec(
                            kind=evaluator_pb2.EXTRACTOR_KIND_LLM, agent=bad
                        ),
                    ),
                ),
            ]
            yaml_config = {
                "eval_id": "leak-yaml",
                "models": [{"name": "m", "endpoint": ep, "api_key_env": env}],
                "suites": {"are_you_sure": {"questions": "q.jsonl"}},
            }
            out.append(
                (
                    "eval",
                    "RunEvaluation",
                    evaluator_pb2.RunEvaluationRequest(config_yaml=yaml.safe_dump(yaml_config)),
                )
            )
    for ep in endpoints:  # agents that are not allow-listed
        bad = _agent(ep)
        out += [
            ("orch", "RunDebate", _debate(bad, good)),
            ("orch", "BuildTrees", orchestrator_pb2.BuildTreesRequest(config=_run_config(good, bad))),
            ("eval", "RunEvaluation", _evaluation(bad)),
        ]
    # stores that would make the server sign S3 requests with its AWS key towards the capture server
    store = common_pb2.StoreSpec(url="s3://bucket/x", endpoint=capture)
    run = _run_config(good, good)
    run.store.CopyFrom(store)
    out += [
        ("orch", "BuildTrees", orchestrator_pb2.BuildTreesRequest(config=run)),
        ("orch", "GetTree", orchestrator_pb2.GetTreeRequest(job_id="j", tree_id="q", store=store)),
        ("orch", "ExtractPreferences", orchestrator_pb2.ExtractPreferencesRequest(job_id="j", store=store)),
        ("eval", "GetEvaluation", evaluator_pb2.GetEvaluationRequest(eval_id="e", store=store)),
        ("eval", "RunEvaluation", _evaluation(good, store=store)),
    ]
    return out


def test_no_server_secret_reaches_a_url_a_request_chose(tmp_path: Path, monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    store = LocalStore(tmp_path / "store")
    store.put_text("q.jsonl", json.dumps({"question": "What is 2+2?", "answer": ["4"]}) + "\n")

    with Capture() as capture, Capture() as operator_agent:
        # the operator's policy: one named agent (with its API key) and nothing else
        policy = RequestPolicy(
            agents={"agent": operator_agent.url + "/v1"}, agent_credentials={"agent": "OPERATOR_AGENT_KEY"}
        )

        async def go() -> list[tuple[str, grpc.StatusCode, str]]:
            async with both_servers(store, policy) as servers:
                return [
                    (method, *await outcome(getattr(servers.stubs[service], method), request, timeout=30))
                    for service, method, request in _attempts(capture.url, "agent")
                ]

        results = asyncio.run(go())

    assert len(results) > 60
    for method, code, details in results:
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, code, details)
        for value in SECRETS.values():
            assert value not in details
        assert UPSTREAM_BODY not in details
    assert capture.requests == [], "a request made the server call a URL it chose"
    # the operator's own agent is never called with another secret than its own key
    for seen in operator_agent.requests:
        for name, value in SECRETS.items():
            assert name == "OPERATOR_AGENT_KEY" or value not in seen, seen


def test_an_allowed_agent_gets_no_secret_and_its_error_body_stays_in_the_log(
    tmp_path: Path, monkeypatch
) -> None:
    """The capture server allow-listed by URL prefix but with no credential: the calls reach it,
    carry no secret (not even the operator's key of another agent), and its 400 body is not relayed."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    store = LocalStore(tmp_path / "store")
    store.put_text("q.jsonl", json.dumps({"question": "What is 2+2?", "answer": ["4"]}) + "\n")
    with Capture() as capture:
        policy = RequestPolicy(
            agents={"other": "http://10.0.0.1:8080/v1"},
            agent_url_prefixes=[capture.url + "/"],
            agent_credentials={"other": "OPERATOR_AGENT_KEY", "http://10.0.0.1:": "PBT_TEST_SECRET"},
        )

        async def go() -> list[grpc.aio.AioRpcError]:
            errors = []
            async with both_servers(store, policy) as servers:
                agent = _agent(capture.url + "/v1")
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await servers.stubs["orch"].RunDebate(_debate(agent, agent), timeout=30)
                errors.append(info.value)
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    _ = [e async for e in servers.stubs["eval"].RunEvaluation(_evaluation(agent), timeout=30)]
                errors.append(info.value)
            return errors

        errors = asyncio.run(go())
    assert capture.requests, "the allow-listed agent was not called"
    for seen in capture.requests:
        assert "authorization" not in seen.lower()
        for value in SECRETS.values():
            assert value not in seen
    for error in errors:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert UPSTREAM_BODY not in error.details() and "server log" in error.details()
