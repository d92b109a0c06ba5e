"""Optional bearer-token authentication for pbt gRPC servers, and the matching client side."""

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


class _BearerClientInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
):
    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(*self._header)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._with_token(client_call_details), request)

    async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._with_token(client_call_details), request)


def open_channel(
    address: str,
    *,
    token: str | None = None,
    tls_ca_file: str | None = None,
    tls: bool = False,
    max_message_bytes: int = 64 * 1024 * 1024,
) -> grpc.aio.Channel:
    """An asyncio channel to a pbt server, with the bearer token attached to every call when given."""
    options = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
    interceptors = [_BearerClientInterceptor(token)] if token else None
    if tls or tls_ca_file:
        root = open(tls_ca_file, "rb").read() if tls_ca_file else None
        creds = grpc.ssl_channel_credentials(root_certificates=root)
        return grpc.aio.secure_channel(address, creds, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
