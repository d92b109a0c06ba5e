"""Bad input to the agent server's OpenAI routes (issue #17): every case is a 4xx with the one
error shape, never a 500 or a stall; the server stays ready and a good request works after.

The routes run in process on a fresh FastAPI app with the tiny model (no subprocess): a table of
bodies with huge numbers, over-long texts and candidates, lone surrogates, deep JSON.
"""

from __future__ import annotations

import json
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.agent.model import AgentModel
from services.agent.routes import register_openai_routes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Q = [{"role": "user", "content": "What is the capital of France?"}]
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def served(tiny_model_dir):
    model = AgentModel("tiny", tiny_model_dir, num_threads=1)
    model.load()
    app = FastAPI()
    register_openai_routes(app, model, prefixes=("/v1",))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield model, client
    model.stop()


def _chat(**kw):
    return {"messages": Q, "max_tokens": 2, "temperature": 0, **kw}


CASES = [
    ("chat", "top_k-huge", _chat(top_k=10**30)),
    ("chat", "top_k-neg", _chat(top_k=-5)),
    ("chat", "seed-huge", _chat(seed=10**30)),
    ("chat", "max_tokens-huge", _chat(max_tokens=10**12)),
    ("chat", "min_tokens-huge", _chat(min_tokens=10**12)),
    ("chat", "min-over-max", _chat(min_tokens=5, max_tokens=2)),
    ("chat", "n-huge", _chat(n=10**6)),
    ("chat", "temperature-nan", '{"messages": [{"role": "user", "content": "q"}], "temperature": NaN}'),
    ("chat", "temperature-inf", '{"messages": [{"role": "user", "content": "q"}], "temperature": Infinity}'),
    ("chat", "top_p-zero", _chat(top_p=0)),
    ("chat", "surrogate", '{"messages": [{"role": "user", "content": "x\\ud800y"}]}'),
    ("chat", "surrogate-stop", _chat(stop="\ud800")),
    ("chat", "stop-many", _chat(stop=["x"] * 1000)),
    ("chat", "stop-long", _chat(stop="x" * 10_000)),
    ("chat", "content-huge", _chat(messages=[{"role": "user", "content": "word " * 100_000}])),
    ("chat", "prompt-over-context", _chat(messages=[{"role": "user", "content": "word " * 5_000}])),
    ("chat", "messages-many", _chat(messages=Q * 10_000)),
    ("chat", "messages-empty", _chat(messages=[])),
    ("chat", "role", _chat(messages=[{"role": "root", "content": "x"}])),
    ("chat", "content-type", _chat(messages=[{"role": "user", "content": {"a": 1}}])),
    ("chat", "deep-json", DEEP),
    ("chat", "deep-content", '{"messages": [{"role": "user", "content": ' + DEEP + "}]}"),
    ("chat", "not-json", "{"),
    ("chat", "binary", b"\xff\xfe\x00\x81"),
    ("chat", "list", "[1, 2]"),
    ("chat", "model-unknown", _chat(model="other")),
    ("chat", "model-long", _chat(model="m" * 100_000)),
    ("chat", "stream", _chat(stream=True)),
    ("completions", "prompt-empty", {"prompt": ""}),
    ("completions", "prompt-surrogate", '{"prompt": "\\udfff"}'),
    ("completions", "prompt-huge", {"prompt": "x" * 1_000_000}),
    ("completions", "top_k-huge", {"prompt": "x", "top_k": 10**30}),
    ("candidates", "candidate-2mb", {"messages": Q, "candidates": ["x" * 2_000_000]}),
    ("candidates", "candidate-over-context", {"messages": Q, "candidates": ["word " * 3_000]}),
    ("candidates", "candidates-many", {"messages": Q, "candidates": ["Paris"] * 10_000}),
    ("candidates", "candidates-none", {"messages": Q, "candidates": []}),
    (
        "candidates",
        "candidate-surrogate",
        '{"messages": [{"role": "user", "content": "q"}], "candidates": ["\\ud83d"]}',
    ),
    ("candidates", "deep", DEEP),
]
ROUTES = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "candidates": "/v1/pbt/candidate_logprobs",
}


@pytest.mark.parametrize(
    ("route", "body"), [(c[0], c[2]) for c in CASES], ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_bad_body_is_a_4xx(served, route: str, body) -> None:
    model, client = served
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    started = time.monotonic()
    response = client.post(ROUTES[route], content=content, headers={"content-type": "application/json"})
    assert time.monotonic() - started < 20, "the request stalled the server"
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert error["message"] and len(error["message"]) <= 2000
    assert model.ready


def test_still_serving_after_the_bad_bodies_and_not_ready_when_it_cannot_serve(served) -> None:
    model, client = served
    response = client.post(ROUTES["chat"], json=_chat())
    assert response.status_code == 200, response.text
    scores = client.post(ROUTES["candidates"], json={"messages": Q, "candidates": ["Paris", "Lyon"]})
    assert scores.status_code == 200 and len(scores.json()["logprobs"]) == 2
    # a backend whose worker is gone cannot serve: readiness says so and requests get 503
    worker = model.backend._worker
    worker.stop()
    assert not model.ready
    assert client.post(ROUTES["chat"], json=_chat()).status_code == 503
