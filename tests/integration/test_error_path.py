"""One error path: the same bad input gets the same code class and the same message over gRPC
(orchestrator, evaluator) and HTTP (the agent server), by `pbt.errors.STATUS`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_servers import both_servers
from grpc_status import rpc_status

from pbt.errors import STATUS, ValidationError
from pbt.store import LocalStore
from pbt.v1 import common_pb2
from pbt.v1 import evaluator_pb2 as E
from pbt.v1 import orchestrator_pb2 as O
from services.common.policy import RequestPolicy

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


def _debate(endpoint: str = "scripted:", **kw: Any) -> O.RunDebateRequest:
    return O.RunDebateRequest(
        question="What is 2+2?",
        agents=[O.DebateAgent(name=f"p{i}", agent=common_pb2.AgentSpec(endpoint=endpoint)) for i in range(2)],
        extraction=O.ExtractionSpec(mode=O.EXTRACTION_MODE_RULES),
        max_turns=1,
        **kw,
    )


def _evaluation(endpoint: str) -> E.RunEvaluationRequest:
    return E.RunEvaluationRequest(
        config=E.EvaluationConfig(
            eval_id="ep",
            models=[E.EvaluatedModel(name="m", agent=common_pb2.AgentSpec(endpoint=endpoint))],
            seeds=[1],
            suites=E.EvaluationSuites(are_you_sure=E.AreYouSureSuiteSpec(questions="q.jsonl", limit=1)),
            bootstrap_samples=10,
        )
    )


async def _grpc_error(call: Any, request: Any) -> tuple[str, str, str, str]:
    """(code name, details, violated field, its description) of a call that fails."""
    try:
        reply = call(request, timeout=30)
        if hasattr(reply, "__aiter__"):
            _ = [event async for event in reply]
        else:
            await reply
    except grpc.aio.AioRpcError as exc:
        status = rpc_status.from_call(exc)
        bad = error_details_pb2.BadRequest()
        assert status is not None and status.details[0].Unpack(bad)
        violation = bad.field_violations[0]
        return exc.code().name, exc.details() or "", violation.field, violation.description
    raise AssertionError("the call succeeded")


def _http_error(body: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str | None]:
    """(status, message, param) the agent server's chat route answers `body` with (no model loaded:
    requests are validated before the model is needed)."""
    monkeypatch.setattr(sys, "argv", sys.argv[:1])  # kserve parses sys.argv when imported
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from services.agent.model import AgentModel
    from services.agent.routes import register_openai_routes

    app = FastAPI()
    register_openai_routes(app, AgentModel("tiny", "/nonexistent"))
    response = TestClient(app).post("/v1/chat/completions", json=body)
    error = response.json()["error"]
    assert error["code"] == response.status_code
    return response.status_code, error["message"], error["param"]


@pytest.mark.parametrize(("param", "value"), [("top_p", 1.5), ("top_p", 0), ("temperature", -1)])
def test_a_bad_sampling_parameter_gets_one_code_and_message_on_both_transports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, param: str, value: float
) -> None:
    async def go() -> tuple[str, str, str, str]:
        policy = RequestPolicy(allow_local_backends=True)
        async with both_servers(LocalStore(tmp_path / "store"), policy) as servers:
            sampling = common_pb2.SamplingParams(**{param: value})
            return await _grpc_error(servers.stubs["orch"].RunDebate, _debate(sampling=sampling))

    code, details, field, description = asyncio.run(go())
    status, message, http_param = _http_error({"messages": MESSAGES, param: value}, monkeypatch)
    kind = STATUS[ValidationError]
    assert (code, status) == (kind.grpc, kind.http) == ("INVALID_ARGUMENT", 400)
    assert (field, http_param) == (f"sampling.{param}", param)
    assert details == f"field '{field}': {description}"
    assert message == f"field '{param}': {description}"


def test_both_grpc_servers_refuse_local_agents_alike_unless_the_policy_allows_them(tmp_path: Path) -> None:
    async def go(policy: RequestPolicy) -> dict[str, tuple[str, str, str, str]]:
        # a later field is bad too: past the policy, that one is refused
        debate = _debate("scripted:/etc/passwd", sampling=common_pb2.SamplingParams(top_p=1.5))
        evaluation = _evaluation("local:/models/secret")
        evaluation.config.store.url = "/etc"
        async with both_servers(LocalStore(tmp_path / "store"), policy) as servers:
            return {
                "orch": await _grpc_error(servers.stubs["orch"].RunDebate, debate),
                "eval": await _grpc_error(servers.stubs["eval"].RunEvaluation, evaluation),
            }

    refused = asyncio.run(go(RequestPolicy()))
    assert refused["orch"][0] == refused["eval"][0] == "INVALID_ARGUMENT"
    assert refused["orch"][2] == "agents[0].agent.endpoint"
    assert refused["eval"][2] == "config.models[0].endpoint"
    for _, _, _, description in refused.values():
        assert "does not accept" in description and "--allow-local-backends" in description
    assert refused["orch"][3].replace("scripted:", "local:") == refused["eval"][3]

    allowed = asyncio.run(go(RequestPolicy(allow_local_backends=True)))
    assert allowed["orch"][0] == allowed["eval"][0] == "INVALID_ARGUMENT"
    assert (allowed["orch"][2], allowed["eval"][2]) == ("sampling.top_p", "config.store.url")
