"""OpenAI-compatible HTTP backend: vLLM (``/v1``), KServe's Hugging Face runtime (``/openai/v1``), our agent server.

One `HttpBackend` per endpoint. It keeps a pooled `httpx.AsyncClient`, limits the number of
requests in flight with a semaphore, and retries 429, 5xx, timeouts and connection errors with
exponential backoff and full jitter (tenacity). Errors name the endpoint and the reason:
`pbt.errors.UnavailableError` when retries are exhausted, `pbt.errors.ValidationError` (or
`NotFoundError` for 404) carrying the server's own message for other 4xx answers.

vLLM's extra sampling fields (``top_k``, ``min_tokens``, ``seed``) are sent as top-level body
fields, which vLLM, KServe and the project's agent server all accept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from pbt.backends.base import ChatBackend, ChatResult, Choice, Message, SamplingParams, Usage
from pbt.errors import NotFoundError, UnavailableError, ValidationError, kind_for_http

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _RetryableStatus(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


def normalize_base_url(url: str) -> str:
    """``http://h:p`` -> ``http://h:p/v1``; URLs that already end in a version path are kept."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValidationError(f"endpoint must start with http:// or https://, got {url!r}", field="endpoint")
    tail = url.rsplit("/", 1)[-1]
    if tail.startswith("v") and tail[1:].isdigit():
        return url
    return f"{url}/v1"


def server_message(response: httpx.Response) -> str:
    """The message of an error answer: OpenAI's / this project's ``{"error": {"message"}}``, a bare
    ``error`` string, FastAPI's ``detail`` or vLLM's ``message``; else the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if "detail" in body:
            return str(body["detail"])
        if "message" in body:
            return str(body["message"])
    return str(body)[:500]


class HttpBackend(ChatBackend):
    """Chat completions against one OpenAI-compatible endpoint.

    Args:
        base_url: server URL, with or without the ``/v1`` or ``/openai/v1`` prefix.
        model: the model name to request; ``None`` asks ``GET {base}/models`` once and takes the first.
        api_key: sent as ``Authorization: Bearer``.
        max_concurrency: requests in flight at once (the connection pool has the same size).
        timeout: seconds for a whole response; ``connect_timeout`` for opening a connection.
        max_attempts / max_retry_s: give up after this many attempts or this long retrying.
        backoff_initial / backoff_max: exponential backoff base and cap (seconds), with full jitter.
        transport: an httpx transport to use instead of the network (tests, custom TLS).
        relay_errors: put the server's error message into the exceptions raised (the default, for
            the command line); servers set False: the message is logged, and exceptions only say
            which status came back (a request cannot read what an internal URL answered).

    Use one instance inside one event loop at a time (it re-creates its client if the loop changes).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        max_attempts: int = 6,
        max_retry_s: float = 120.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
        relay_errors: bool = True,
    ) -> None:
        if max_concurrency < 1:
            raise ValidationError("must be >= 1", field="max_concurrency")
        if max_attempts < 1:
            raise ValidationError("must be >= 1", field="max_attempts")
        self.base_url = normalize_base_url(base_url)
        self.name = self.base_url
        self.model = model
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.max_attempts = max_attempts
        self.max_retry_s = max_retry_s
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.transport = transport
        self.relay_errors = relay_errors
        self._client: httpx.AsyncClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._model_lock: asyncio.Lock | None = None

    # -- plumbing ----------------------------------------------------------------------------
    def _ensure_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore, asyncio.Lock]:
        """The client, semaphore and lock of the running event loop (created on first use per loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self.timeout,
                headers=headers,
                transport=self.transport,
                limits=httpx.Limits(
                    max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
                ),
            )
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._model_lock = asyncio.Lock()
            self._loop = loop
        return self._client, self._semaphore, self._model_lock

    async def _once(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        client, semaphore, _ = self._ensure_client()
        async with semaphore:
            response = await client.request(method, path, json=body)
        if response.status_code >= 400:
            message = server_message(response)
            if not self.relay_errors:
                log.warning("%s%s answered %d: %s", self.base_url, path, response.status_code, message[:500])
                message = "(the answer is in the server log)"
            if response.status_code in RETRY_STATUS:
                raise _RetryableStatus(response.status_code, message)
            kind = kind_for_http(response.status_code)
            text = f"{self.base_url}{path} rejected the request ({response.status_code}): {message}"
            if kind is UnavailableError:
                raise UnavailableError(text, endpoint=self.base_url)
            raise kind(text)
        try:
            return response.json()
        except ValueError as exc:
            raise UnavailableError(
                f"{path} returned a body that is not JSON", endpoint=self.base_url
            ) from exc

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call with retries; `path` is relative to the base URL (``/chat/completions``)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, _RetryableStatus | httpx.TransportError)),
            wait=wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max),
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_retry_s),
            before_sleep=lambda state: log.warning(
                "%s%s attempt %d failed (%s); retrying",
                self.base_url,
                path,
                state.attempt_number,
                _describe(state.outcome.exception()),
            ),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, path, body)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise UnavailableError(
                f"{method} {path} failed after {exc.last_attempt.attempt_number} attempts: {_describe(last)}",
                endpoint=self.base_url,
            ) from last
        raise RuntimeError("tenacity ended without a result")  # pragma: no cover - stop always raises

    async def resolve_model(self) -> str:
        """The model name to send: the configured one, or the first of ``GET /models``."""
        if self.model:
            return self.model
        _, _, lock = self._ensure_client()
        async with lock:
            if not self.model:
                listing = await self.request("GET", "/models")
                try:
                    data = listing.get("data") or []
                    if data:
                        self.model = str(data[0]["id"])
                except (KeyError, TypeError, AttributeError, IndexError) as exc:
                    raise self._malformed("model listing", exc) from exc
                if not data:
                    raise NotFoundError(f"{self.base_url}/models lists no model")
        return self.model

    # -- ChatBackend -------------------------------------------------------------------------
    @staticmethod
    def sampling_body(params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "n": params.n,
        }
        if params.top_k is not None:
            body["top_k"] = params.top_k
        if params.min_tokens:
            body["min_tokens"] = params.min_tokens
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    async def chat(self, messages: Sequence[Message], params: SamplingParams) -> ChatResult:
        body = {
            "model": await self.resolve_model(),
            "messages": [dict(m) for m in messages],
            **self.sampling_body(params),
        }
        data = await self.request("POST", "/chat/completions", body)
        return self._result(data, lambda c: (c.get("message") or {}).get("content") or "")

    async def complete(self, prompt: str, params: SamplingParams) -> ChatResult:
        """The OpenAI completions API (raw prompt, no chat template)."""
        body = {"model": await self.resolve_model(), "prompt": prompt, **self.sampling_body(params)}
        data = await self.request("POST", "/completions", body)
        return self._result(data, lambda c: c.get("text") or "")

    def _malformed(self, what: str, exc: BaseException) -> UnavailableError:
        detail = f": {exc!r}"[:300] if self.relay_errors else " (details in the server log)"
        if not self.relay_errors:
            log.warning("%s: malformed %s: %r", self.base_url, what, exc)
        return UnavailableError(f"malformed {what}{detail}", endpoint=self.base_url)

    def _result(self, data: dict[str, Any], text_of: Any) -> ChatResult:
        try:
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            choices = [
                Choice(
                    index=int(c.get("index", i)),
                    text=text_of(c),
                    finish_reason=c.get("finish_reason") or "stop",
                    completion_tokens=int(c.get("completion_tokens") or 0),
                )
                for i, c in enumerate(data["choices"])
            ]
            usage = data.get("usage") or {}
            return ChatResult(
                choices=sorted(choices, key=lambda c: c.index),
                usage=Usage(
                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0),
                ),
                model=str(data.get("model") or self.model or ""),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._malformed("completion response", exc) from exc

    async def candidate_logprobs(self, messages: Sequence[Message], candidates: Sequence[str]) -> list[float]:
        """Uses the agent server's ``POST /pbt/candidate_logprobs`` extension; other servers lack it."""
        body = {
            "model": await self.resolve_model(),
            "messages": [dict(m) for m in messages],
            "candidates": list(candidates),
        }
        try:
            data = await self.request("POST", "/pbt/candidate_logprobs", body)
        except NotFoundError as exc:
            raise NotImplementedError(
                f"{self.base_url} has no /pbt/candidate_logprobs route (only the pbt agent server scores candidates)"
            ) from exc
        try:
            return [float(x) for x in data["logprobs"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._malformed("candidate_logprobs response", exc) from exc

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.aclose()
            except RuntimeError:  # the loop that owned it is gone
                pass


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"
