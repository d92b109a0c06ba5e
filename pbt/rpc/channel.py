"""Opening a channel to a pbt gRPC server: message limits, optional TLS, optional bearer token."""

from __future__ import annotations

import grpc

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> grpc.aio.Channel:
    """An asyncio channel to a pbt server, with the bearer token attached to every call when given.

    TLS is on with `tls` or a `tls_ca_file` (the CA that signed the server's certificate; without
    it the system roots are used).
    """
    options = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
    interceptors = [_BearerClientInterceptor(token)] if token else None
    if tls or tls_ca_file:
        root = None
        if tls_ca_file:
            with open(tls_ca_file, "rb") as f:
                root = f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=root)
        return grpc.aio.secure_channel(address, creds, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
