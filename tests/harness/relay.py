"""A real gRPC relay in front of a frontend, for fault injection: it forwards every call as raw bytes
and lets a test decide what happens to one method's calls (drop the reply after the call ran, hold
the call until the test says go, or answer with something else)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc

_SERVICE = "unified_bridge.v1.UnifiedBridge"
_STREAMING = frozenset({"WatchSession"})


def _identity(data: bytes) -> bytes:
    return data


# A hook sees the method name, the raw request and a function that forwards it; it returns the raw
# reply, or calls context.abort(...).
Hook = Callable[[bytes, Callable[[bytes], bytes], grpc.ServicerContext], bytes]


class Relay:
    """``Relay(frontend_target)`` listens on its own port (``relay.target``) until ``stop()``."""

    def __init__(self, upstream: str) -> None:
        self._channel = grpc.insecure_channel(upstream)
        self.hooks: dict[str, Hook] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        self._server.add_generic_rpc_handlers((_Handler(self),))
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{port}"
        self._server.start()

    def forwarder(self, method: str) -> Callable[[bytes], bytes]:
        call = self._channel.unary_unary(
            f"/{_SERVICE}/{method}", request_serializer=_identity, response_deserializer=_identity
        )
        return lambda request: call(request, timeout=10)

    def unary(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self.calls[method] = self.calls.get(method, 0) + 1
        forward = self.forwarder(method)
        hook = self.hooks.get(method)
        try:
            return forward(request) if hook is None else hook(request, forward, context)
        except grpc.RpcError as error:
            context.abort(error.code(), error.details() or "")
            raise

    def stream(self, method: str, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        call = self._channel.unary_stream(
            f"/{_SERVICE}/{method}", request_serializer=_identity, response_deserializer=_identity
        )(request)
        context.add_callback(call.cancel)
        try:
            yield from call
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                context.abort(error.code(), error.details() or "")

    def stop(self) -> None:
        self._server.stop(0)
        self._channel.close()


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, relay: Relay) -> None:
        self._relay = relay

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method.rsplit("/", 1)[-1]
        relay = self._relay
        if method in _STREAMING:
            return grpc.unary_stream_rpc_method_handler(
                lambda request, context: relay.stream(method, request, context),
                request_deserializer=_identity,
                response_serializer=_identity,
            )
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: relay.unary(method, request, context),
            request_deserializer=_identity,
            response_serializer=_identity,
        )
