"""The UnifiedBridge service's method handlers, with requests parsed so that bad bytes are bad input.

The generated ``add_UnifiedBridgeServicer_to_server`` parses each request with ``FromString``; bytes
that are not a valid message then end the call as UNKNOWN ("Unexpected DecodeError") with a
traceback in the log, for every caller, authenticated or not. Here a request that does not parse
becomes a :class:`Malformed` value, which the servicer answers with INVALID_ARGUMENT and no log line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from unified_bridge.proto import unified_bridge_pb2 as pb

__all__ = ["Malformed", "add_servicer"]


@dataclass(frozen=True, slots=True)
class Malformed:
    """What a request that does not parse as its message turns into."""

    message_name: str
    reason: str

    def describe(self) -> str:
        return f"the request is not a valid {self.message_name} message: {self.reason}"


def _parser(message_class: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except (DecodeError, RecursionError) as exc:
            return Malformed(message_class.__name__, str(exc) or type(exc).__name__)

    return parse


def add_servicer(servicer: Any, server: grpc.aio.Server) -> None:
    """Register every method of ``unified_bridge.v1.UnifiedBridge`` on ``server``."""
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
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=_parser(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    # Registered methods skip the generic lookup per call (grpcio >= 1.62; the stubs lag behind).
    server.add_registered_method_handlers(service.full_name, handlers)  # type: ignore[attr-defined]
