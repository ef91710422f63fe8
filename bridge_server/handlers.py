"""The UnifiedBridge service's method handlers, with requests parsed so that bad bytes are bad input.

The generated ``add_UnifiedBridgeServicer_to_server`` parses each request with ``FromString``; bytes
that are not a valid message then end the call as UNKNOWN ("Unexpected DecodeError") with a
traceback in the log, for every caller, authenticated or not. Here a request that does not parse
becomes a :class:`Malformed` value, which the servicer answers with INVALID_ARGUMENT and no log line.

With access control on, each parsed request is also checked against its caller's scope
(:func:`bridge_server.access.refusal`); a call outside it reaches the servicer as a :class:`Refused`
value, which the servicer answers with PERMISSION_DENIED (its metrics and error metadata included).
An open watch stream is checked again after the rules are reloaded, before its next event.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from bridge_server.access import CALLER, refusal
from bridge_server.scopes import Keyring
from unified_bridge.errors import (
    ERROR_METADATA_KEY,
    BridgeError,
    PermissionDeniedError,
    ValidationError,
    wire_name,
)
from unified_bridge.proto import unified_bridge_pb2 as pb

__all__ = ["Malformed", "Refused", "Rejected", "add_servicer"]

log = logging.getLogger(__name__)


class Rejected:
    """A request the servicer must not act on: it raises :meth:`error` instead."""

    def error(self) -> BridgeError:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Malformed(Rejected):
    """What a request that does not parse as its message turns into."""

    message_name: str
    reason: str

    def describe(self) -> str:
        return f"the request is not a valid {self.message_name} message: {self.reason}"

    def error(self) -> BridgeError:
        return ValidationError(self.describe())


@dataclass(frozen=True, slots=True)
class Refused(Rejected):
    """What a request outside its caller's scope turns into."""

    reason: str

    def error(self) -> BridgeError:
        return PermissionDeniedError(f"permission denied: {self.reason}")


def _parser(message_class: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except (DecodeError, RecursionError) as exc:
            return Malformed(message_class.__name__, str(exc) or type(exc).__name__)

    return parse


def _screen(method: str, request: Any) -> Any:
    """``request``, or a :class:`Refused` if this call's caller may not make it."""
    if isinstance(request, Malformed):
        return request  # names no session; answered with INVALID_ARGUMENT, touching nothing
    caller = CALLER.get()
    reason = refusal(method, request, caller)
    if reason is None:
        return request
    log.info("refused %s of token %r: %s", method, caller.name if caller else None, reason)
    return Refused(reason)


def _screened(
    method: str, behavior: Callable[..., Any], streaming: bool, keyring: Callable[[], Keyring]
) -> Callable[..., Any]:
    """``behavior`` with each request checked against its caller's scope first; a stream is checked
    again before each response that follows a reload of the rules, so a revoked token reads no more."""
    if streaming:

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            rules, caller = keyring(), CALLER.get()
            # aclosing: a client that goes away closes the servicer's stream (and its finally) now.
            async with contextlib.aclosing(behavior(_screen(method, request), context)) as responses:
                async for response in responses:
                    if keyring() is not rules and caller is not None:
                        rules = keyring()
                        holder = rules.holder(caller.digest)
                        reason = (
                            refusal(method, request, holder)
                            if holder is not None
                            else f"token {caller.name!r} is no longer accepted"
                        )
                        if reason is not None:
                            await _end_refused(context, responses, method, reason)
                        caller = holder
                    yield response

        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await behavior(_screen(method, request), context)

    return unary


async def _end_refused(
    context: grpc.aio.ServicerContext[Any, Any], responses: Any, method: str, reason: str
) -> None:
    """End a stream whose caller may no longer read it. The error goes into the servicer's stream,
    which ends the call as it does on any error (PERMISSION_DENIED, the error's metadata, its
    metrics); a stream that does not end on it is ended here."""
    log.info("ended %s: %s", method, reason)
    error = Refused(reason).error()
    with contextlib.suppress(PermissionDeniedError, StopAsyncIteration):
        await responses.athrow(error)
    context.set_trailing_metadata(((ERROR_METADATA_KEY, wire_name(type(error))),))
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, error.message)


def _encoded_or_serialized(message: Any) -> bytes:
    """A message, or the bytes of one already encoded: an event every watcher of a session sends is
    encoded once per frontend, not once per stream, and a variable read again unchanged once in all
    (`VariableRecord.wire`)."""
    if type(message) is bytes:
        return message
    encoded: bytes = message.SerializeToString()
    return encoded


# Unary methods whose servicer may answer with the bytes of its reply.
_PRE_ENCODED = frozenset({"GetVariable"})


def add_servicer(
    servicer: Any, server: grpc.aio.Server, keyring: Callable[[], Keyring] | None = None
) -> None:
    """Register every method of ``unified_bridge.v1.UnifiedBridge`` on ``server``; with the
    current ``keyring`` (access control on), each call is checked against the scope of the caller
    the interceptor set."""
    service = pb.DESCRIPTOR.services_by_name["UnifiedBridge"]
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        request_class = getattr(pb, method.input_type.name)
        response_class = getattr(pb, method.output_type.name)
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        behavior = getattr(servicer, method.name)
        if keyring is not None:
            behavior = _screened(method.name, behavior, method.server_streaming, keyring)
        handlers[method.name] = make(
            behavior,
            request_deserializer=_parser(request_class),
            # A stream's events, and GetVariable's reply, may come already encoded.
            response_serializer=(
                _encoded_or_serialized
                if method.server_streaming or method.name in _PRE_ENCODED
                else response_class.SerializeToString
            ),
        )
    # A generic handler only, no registered methods: see bridge_server/generic_handlers.py.
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
