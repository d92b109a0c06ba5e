"""Map the project's exceptions to gRPC statuses for every servicer, by `pbt.errors.STATUS`.

- the code is the table's (`pbt.errors.status_of`); pydantic's errors go through `from_pydantic`
- `ValidationError` carries a ``google.rpc.BadRequest`` field violation
- `UnavailableError` carries a ``google.rpc.ErrorInfo`` naming the endpoint
- anything else -> INTERNAL with a generic message and an incident id; the traceback is logged
Calls that the servicer aborts itself and cancellations (deadline, client gone) pass through.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pydantic
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from pbt.errors import INTERNAL, UnavailableError, ValidationError, cap, from_pydantic, status_of

log = logging.getLogger(__name__)

ERROR_DOMAIN = "pbt.dev"
#: longest status message and field description sent back (messages repeat request values;
#: gRPC refuses trailing metadata over ~8 KB, which turned long ids into RESOURCE_EXHAUSTED)
MAX_MESSAGE_CHARS = 1000


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status_for(exc: BaseException, method: str = "") -> status_pb2.Status:
    """The `google.rpc.Status` an exception maps to (INTERNAL for anything unexpected); messages
    and field descriptions are cut to `MAX_MESSAGE_CHARS`."""
    status = _status_for(exc, method)
    status.message = cap(status.message, MAX_MESSAGE_CHARS)
    return status


def _status_for(exc: BaseException, method: str = "") -> status_pb2.Status:
    if isinstance(exc, pydantic.ValidationError):  # a servicer that did not convert it
        exc = from_pydantic(exc)
    kind = status_of(exc)
    if kind is INTERNAL:
        incident = uuid.uuid4().hex[:12]
        log.error("internal error in %s (incident %s)", method or "a call", incident, exc_info=exc)
        return status_pb2.Status(
            code=code_pb2.INTERNAL,
            message=f"internal error (incident {incident}); the server log has the details",
        )
    status = status_pb2.Status(code=code_pb2.Code.Value(kind.grpc), message=str(exc))
    if isinstance(exc, ValidationError):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=cap(exc.field or "", 200), description=cap(exc.message, MAX_MESSAGE_CHARS)
        )
        status.details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    elif isinstance(exc, UnavailableError):
        info = error_details_pb2.ErrorInfo(
            reason="DEPENDENCY_UNAVAILABLE",
            domain=ERROR_DOMAIN,
            metadata={"endpoint": cap(exc.endpoint or "", 300)},
        )
        status.details.append(_pack(info))
    return status


async def abort_with_exception(
    context: grpc.aio.ServicerContext, exc: BaseException, method: str = ""
) -> None:
    status = rpc_status.to_status(status_for(exc, method))
    if status.code != grpc.StatusCode.INTERNAL:
        log.info("%s -> %s: %s", method, status.code.name, status.details)
    await context.abort(status.code, status.details, status.trailing_metadata)


def _is_passthrough(exc: BaseException) -> bool:
    # context.abort() raises grpc.aio.AbortError (an Exception); the status is already set.
    return isinstance(exc, grpc.aio.AbortError)


def _wrap_unary(behavior: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            bad = _undecodable(request_or_iterator)
            if bad is not None:
                raise bad
            return await behavior(request_or_iterator, context)
        except Exception as exc:
            if _is_passthrough(exc):
                raise
            await abort_with_exception(context, exc, method)

    return wrapper


def _wrap_stream(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behavior):
        return _wrap_unary(behavior, method)  # a coroutine that writes with context.write()

    async def wrapper(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            bad = _undecodable(request_or_iterator)
            if bad is not None:
                raise bad
            async for item in behavior(request_or_iterator, context):
                yield item
        except Exception as exc:
            if _is_passthrough(exc):
                raise
            await abort_with_exception(context, exc, method)

    return wrapper


class UndecodableRequest:
    """What `_tolerant` deserializers hand the servicer instead of raising: grpc would answer
    bytes that are no valid message with UNKNOWN/INTERNAL, the wrapped handler with INVALID_ARGUMENT."""

    def __init__(self, error: BaseException):
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - DecodeError, RecursionError (deeply nested bytes)
            return UndecodableRequest(exc)

    return deserialize


def _undecodable(request: Any) -> ValidationError | None:
    if isinstance(request, UndecodableRequest):
        return ValidationError(f"the request is not a valid message ({type(request.error).__name__})")
    return None


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    method: str,
    unary: Callable[[Callable[..., Any], str], Callable[..., Any]],
    stream: Callable[[Callable[..., Any], str], Callable[..., Any]],
) -> grpc.RpcMethodHandler:
    """Rebuild a method handler with its behaviour wrapped (unary or streaming response)."""
    ser = {
        "request_deserializer": _tolerant(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary, method), **ser)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream(handler.unary_stream, method), **ser)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary, method), **ser)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(stream(handler.stream_stream, method), **ser)
    return handler


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Turns exceptions escaping a servicer into statuses with rich details (see the module docstring)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return wrap_handler(handler, handler_call_details.method, _wrap_unary, _wrap_stream)
