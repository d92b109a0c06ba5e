"""Optional bearer-token authentication for pbt gRPC servers (the client side: `pbt.rpc.open_channel`)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc

from services.common.errors import wrap_handler

#: methods reachable without a token: Kubernetes gRPC probes do not send credentials
PUBLIC_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Rejects calls without ``authorization: Bearer <token>`` (one of `tokens`) as UNAUTHENTICATED."""

    def __init__(self, tokens: Iterable[str], public_prefixes: Iterable[str] = PUBLIC_METHOD_PREFIXES):
        self._tokens = [t.encode() for t in tokens if t]
        if not self._tokens:
            raise ValueError("BearerTokenInterceptor needs at least one non-empty token")
        self._public = tuple(public_prefixes)

    def _authorized(self, metadata: Iterable[tuple[str, Any]] | None) -> bool:
        for key, value in metadata or ():
            if key.lower() != "authorization":
                continue
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and any(
                hmac.compare_digest(token.strip().encode(), t) for t in self._tokens
            ):
                return True
        return False

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if (
            handler is None
            or method.startswith(self._public)
            or self._authorized(handler_call_details.invocation_metadata)
        ):
            return handler

        def deny_unary(_behavior: Callable[..., Any], _method: str) -> Callable[..., Any]:
            async def deny(_request: Any, context: grpc.aio.ServicerContext) -> Any:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

            return deny

        def deny_stream(_behavior: Callable[..., Any], _method: str) -> Callable[..., Any]:
            async def deny(_request: Any, context: grpc.aio.ServicerContext) -> Any:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
                yield  # pragma: no cover - makes this an async generator

            return deny

        return wrap_handler(handler, method, deny_unary, deny_stream)
