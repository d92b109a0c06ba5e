"""OpenAI-compatible routes mounted on KServe's FastAPI app.

Served under ``/openai/v1`` (KServe's Hugging Face runtime layout) and ``/v1`` (vLLM's):
``POST chat/completions``, ``POST completions``, ``GET models`` and the project's extension
``POST pbt/candidate_logprobs``; with runtime LoRA on (``--enable-lora``), vLLM's
``POST load_lora_adapter`` / ``POST unload_lora_adapter`` (a request whose ``model`` is an
adapter's name is served by that adapter). ``GET /v1/models`` also carries KServe V1's ``models`` list, as
the route shadows KServe's own V1 model listing.

Every error has one JSON shape (`schemas.error_body`) and the HTTP status `pbt.errors.STATUS`
gives its kind: invalid requests (unknown model names too) are 400 with the field in ``param``,
an unknown adapter 404, a model not ready 503, anything unexpected a logged 500 with a generic
message. The server keeps serving after any of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pbt.errors import INTERNAL, STATUS, UnavailableError, ValidationError, cap, from_pydantic, status_of
from services.agent import metrics
from services.agent.model import AgentModel
from services.agent.schemas import (
    CandidateLogprobsRequest,
    ChatCompletionRequest,
    CompletionRequest,
    LoadLoraAdapterRequest,
    UnloadLoraAdapterRequest,
    chat_response,
    completion_response,
    error_body,
)

log = logging.getLogger(__name__)

PREFIXES = ("/openai/v1", "/v1")


def _error(route: str, status: int, message: str, param: str | None = None) -> JSONResponse:
    metrics.REQUESTS.labels(route=route, status=str(status)).inc()
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(error_body(message, param=param, code=status, kind=kind), status_code=status)


def _bad_request(route: str, message: str) -> JSONResponse:
    return _error(route, STATUS[ValidationError].http, message)


def error_response(route: str, exc: BaseException) -> JSONResponse:
    """The response to an exception: the status `pbt.errors.STATUS` gives its kind, ``str(exc)``
    as the message (the gRPC servers send the same), a `ValidationError`'s field as ``param``;
    anything unexpected is logged and answered with a generic 500."""
    if isinstance(exc, pydantic.ValidationError):  # e.g. SamplingParams cross-field checks
        exc = from_pydantic(exc)
    status = status_of(exc)
    if status is INTERNAL:
        log.error("%s failed", route, exc_info=exc)
        return _error(route, INTERNAL.http, "internal server error")
    field = exc.field if isinstance(exc, ValidationError) else None
    return _error(route, status.http, cap(str(exc), 1900), field)


class OpenAIRoutes:
    """Route handlers bound to one `AgentModel`."""

    def __init__(self, model: AgentModel):
        self.model = model

    def _served(self) -> list[str]:
        backend = self.model.backend
        return [self.model.name, *(sorted(backend.adapters) if backend is not None else [])]

    def _check_model(self, requested: str | None) -> str | None:
        """The adapter a request's `model` names (None: the base model)."""
        if requested is None or requested == self.model.name:
            return None
        if self.model.backend is not None and requested in self.model.backend.adapters:
            return requested
        raise ValidationError(
            f"model '{requested}' is not served here; available: {self._served()}", field="model"
        )

    async def _handle(
        self,
        route: str,
        request: Request,
        schema: type[pydantic.BaseModel],
        run: Callable[[Any], Awaitable[dict[str, Any]]],
    ) -> JSONResponse:
        started = time.monotonic()
        try:
            raw = await request.body()
            try:
                data = json.loads(raw or b"null")
            except ValueError as exc:
                return _bad_request(route, f"request body is not valid JSON: {exc}")
            except RecursionError:
                return _bad_request(route, "request body is nested too deeply")
            if not isinstance(data, dict):
                return _bad_request(route, "request body must be a JSON object")
            try:
                body = schema.model_validate(data)
            except RecursionError:
                return _bad_request(route, "request body is nested too deeply")
            if self.model.backend is None or not self.model.ready:
                raise UnavailableError(f"model '{self.model.name}' is not ready")
            self._check_model(getattr(body, "model", None))
            payload = await run(body)
        except Exception as exc:
            return error_response(route, exc)
        finally:
            metrics.REQUEST_SECONDS.labels(route=route).observe(time.monotonic() - started)
        metrics.REQUESTS.labels(route=route, status="200").inc()
        return JSONResponse(payload)

    async def chat_completions(self, request: Request) -> JSONResponse:
        async def run(body: ChatCompletionRequest) -> dict[str, Any]:
            messages = [m.model_dump() for m in body.messages]
            adapter = self._check_model(body.model)
            result = await self.model.backend.chat(messages, body.sampling(), adapter=adapter)
            return chat_response(result, adapter or self.model.name)

        return await self._handle("chat_completions", request, ChatCompletionRequest, run)

    async def completions(self, request: Request) -> JSONResponse:
        async def run(body: CompletionRequest) -> dict[str, Any]:
            adapter = self._check_model(body.model)
            result = await self.model.backend.complete(body.prompt, body.sampling(), adapter=adapter)
            return completion_response(result, adapter or self.model.name)

        return await self._handle("completions", request, CompletionRequest, run)

    async def candidate_logprobs(self, request: Request) -> JSONResponse:
        async def run(body: CandidateLogprobsRequest) -> dict[str, Any]:
            messages = [m.model_dump() for m in body.messages]
            adapter = self._check_model(body.model)
            logprobs = await self.model.backend.candidate_logprobs(messages, body.candidates, adapter=adapter)
            return {"model": adapter or self.model.name, "candidates": body.candidates, "logprobs": logprobs}

        return await self._handle("candidate_logprobs", request, CandidateLogprobsRequest, run)

    async def list_models(self) -> JSONResponse:
        backend = self.model.backend
        context = backend.max_context if backend else None
        data = [{"id": self.model.name, "object": "model", "owned_by": "pbt", "max_model_len": context}]
        for name, source in sorted((backend.adapters if backend else {}).items()):
            data.append(
                {
                    "id": name,
                    "object": "model",
                    "owned_by": "pbt",
                    "root": source,
                    "parent": self.model.name,
                    "max_model_len": context,
                }
            )
        return JSONResponse(
            {"object": "list", "data": data, "models": [self.model.name]}  # + KServe V1 "list models" shape
        )

    async def load_lora_adapter(self, request: Request) -> JSONResponse:
        async def run(body: LoadLoraAdapterRequest) -> dict[str, Any]:
            if self.model.lora is None:
                raise ValidationError("runtime LoRA loading is off (start the server with --enable-lora)")
            if body.lora_name == self.model.name:
                raise ValidationError("lora_name is the base model's name", field="lora_name")
            folder, uri = await asyncio.to_thread(self.model.lora.fetch, body.lora_path)
            try:
                await self.model.backend.load_adapter(body.lora_name, folder, source=uri)
            finally:
                await asyncio.to_thread(shutil.rmtree, folder, True)  # the weights are in memory now
            return {
                "status": "ok",
                "message": f"Success: LoRA adapter '{body.lora_name}' added successfully.",
                "lora_name": body.lora_name,
                "source": uri,
            }

        return await self._handle("load_lora_adapter", request, LoadLoraAdapterRequest, run)

    async def unload_lora_adapter(self, request: Request) -> JSONResponse:
        async def run(body: UnloadLoraAdapterRequest) -> dict[str, Any]:
            if self.model.lora is None:
                raise ValidationError("runtime LoRA loading is off (start the server with --enable-lora)")
            self.model.backend.unload_adapter(body.lora_name)
            return {
                "status": "ok",
                "message": f"Success: LoRA adapter '{body.lora_name}' removed successfully.",
                "lora_name": body.lora_name,
            }

        return await self._handle("unload_lora_adapter", request, UnloadLoraAdapterRequest, run)


def register_openai_routes(app: FastAPI, model: AgentModel, prefixes: tuple[str, ...] = PREFIXES) -> None:
    """Add the OpenAI routes for `model` to `app` (call before KServe registers its own routes)."""
    routes = OpenAIRoutes(model)
    for prefix in prefixes:
        app.add_api_route(f"{prefix}/chat/completions", routes.chat_completions, methods=["POST"])
        app.add_api_route(f"{prefix}/completions", routes.completions, methods=["POST"])
        app.add_api_route(f"{prefix}/models", routes.list_models, methods=["GET"])
        app.add_api_route(f"{prefix}/pbt/candidate_logprobs", routes.candidate_logprobs, methods=["POST"])
        app.add_api_route(f"{prefix}/load_lora_adapter", routes.load_lora_adapter, methods=["POST"])
        app.add_api_route(f"{prefix}/unload_lora_adapter", routes.unload_lora_adapter, methods=["POST"])
