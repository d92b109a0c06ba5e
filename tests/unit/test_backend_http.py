"""HttpBackend against an in-process transport: request body, retries, error mapping, concurrency."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from pbt.backends.base import SamplingParams
from pbt.backends.http import HttpBackend, normalize_base_url
from pbt.errors import NotFoundError, UnavailableError, ValidationError

MSGS = [{"role": "user", "content": "hi"}]


def completion(text: str = "ok", n: int = 1) -> dict:
    return {
        "model": "m",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": f"{text}{i}"}, "finish_reason": "length"}
            for i in range(n)
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2 * n},
    }


class Script:
    """A transport answering from a list of (status, body) and recording requests."""

    def __init__(self, answers, delay: float = 0.0):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = delay

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            if isinstance(body, Exception):
                raise body
            return httpx.Response(status, json=body)
        finally:
            self.in_flight -= 1


def backend(script: Script, **kw) -> HttpBackend:
    kw.setdefault("backoff_initial", 0.001)
    kw.setdefault("backoff_max", 0.01)
    return HttpBackend("http://agent:8080/openai/v1", model="m", transport=httpx.MockTransport(script), **kw)


def chat(b: HttpBackend, params: SamplingParams | None = None):
    async def go():
        async with b:
            return await b.chat(MSGS, params or SamplingParams())

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:1", "http://h:1/v1"),
        ("http://h:1/", "http://h:1/v1"),
        ("http://h:1/v1", "http://h:1/v1"),
        ("https://h/openai/v1/", "https://h/openai/v1"),
    ],
)
def test_base_url_forms(url, expected):
    assert normalize_base_url(url) == expected


def test_body_carries_vllm_extra_fields_and_result_is_parsed():
    script = Script([(200, completion(n=2))])
    params = SamplingParams(temperature=0.5, top_k=7, min_tokens=2, max_tokens=9, n=2, seed=3, stop=["\n"])
    result = chat(backend(script), params)
    request = script.requests[0]
    assert request.url == "http://agent:8080/openai/v1/chat/completions"
    body = json.loads(request.content)
    assert body == {
        "model": "m",
        "messages": MSGS,
        "temperature": 0.5,
        "top_p": 1.0,
        "max_tokens": 9,
        "n": 2,
        "top_k": 7,
        "min_tokens": 2,
        "seed": 3,
        "stop": ["\n"],
    }
    assert [c.text for c in result.choices] == ["ok0", "ok1"]
    assert result.usage.prompt_tokens == 3 and result.usage.completion_tokens == 4


def test_retries_429_and_5xx_then_succeeds():
    script = Script([(429, {"error": "slow down"}), (503, {"error": "busy"}), (200, completion())])
    assert chat(backend(script)).choices[0].text == "ok0"
    assert len(script.requests) == 3


def test_connection_errors_are_retried():
    script = Script([(0, httpx.ConnectError("refused")), (200, completion())])
    assert chat(backend(script)).choices[0].text == "ok0"
    assert len(script.requests) == 2


def test_exhausted_retries_name_endpoint_and_reason():
    script = Script([(500, {"error": {"message": "CUDA out of memory"}})])
    with pytest.raises(UnavailableError) as info:
        chat(backend(script, max_attempts=3))
    assert len(script.requests) == 3
    assert info.value.endpoint == "http://agent:8080/openai/v1"
    assert "HTTP 500: CUDA out of memory" in str(info.value) and "3 attempts" in str(info.value)


def test_client_errors_are_not_retried_and_carry_server_message():
    script = Script([(400, {"error": {"message": "n: Input should be greater than or equal to 1"}})])
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        chat(backend(script))
    assert len(script.requests) == 1
    with pytest.raises(NotFoundError, match="404"):
        chat(backend(Script([(404, {"detail": "Not Found"})])))


def test_model_is_discovered_once_from_models_route():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "served"}]})
        assert json.loads(request.content)["model"] == "served"
        return httpx.Response(200, json=completion())

    b = HttpBackend("http://h:1/v1", transport=httpx.MockTransport(handler))
    chat(b)
    assert b.model == "served"


def test_per_endpoint_concurrency_limit():
    script = Script([(200, completion())], delay=0.02)
    b = backend(script, max_concurrency=3)

    async def go():
        async with b:
            await asyncio.gather(*(b.chat(MSGS, SamplingParams()) for _ in range(12)))

    asyncio.run(go())
    assert len(script.requests) == 12 and script.max_in_flight == 3


def test_candidate_logprobs_missing_route_is_not_implemented():
    with pytest.raises(NotImplementedError, match="candidate_logprobs"):

        async def go():
            b = backend(Script([(404, {"detail": "Not Found"})]))
            async with b:
                await b.candidate_logprobs(MSGS, ["yes", "no"])

        asyncio.run(go())


@pytest.mark.parametrize(
    "answer",
    [
        (400, {"error": {"message": "INTERNAL-BODY: db password is hunter2"}}),
        (404, {"detail": "INTERNAL-BODY at /admin"}),
        (503, {"error": "INTERNAL-BODY overloaded"}),
        (200, ["INTERNAL-BODY", "not an object"]),
        (200, {"choices": [{"index": "INTERNAL-BODY"}]}),
        (200, {"choices": [], "usage": "INTERNAL-BODY"}),
    ],
)
def test_servers_keep_upstream_bodies_out_of_errors(answer, caplog):
    """relay_errors=False (the gRPC servers): what an agent answered is logged, never raised."""
    with pytest.raises((ValidationError, NotFoundError, UnavailableError)) as info:
        chat(backend(Script([answer]), relay_errors=False, max_attempts=1))
    assert "INTERNAL-BODY" not in str(info.value)
    if answer[0] >= 400:  # an error status: its message is in the log
        assert "INTERNAL-BODY" in caplog.text
