"""Bearer-token authentication of the UnifiedBridge service (health and reflection stay open).

With `--auth-tokens a,b` every call must carry the metadata `authorization: Bearer <a or b>`;
several tokens let operators rotate them without downtime. Tokens are compared in constant time
and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

__all__ = ["TokenAuthInterceptor", "parse_tokens"]

_PROTECTED_PREFIX = "/unified_bridge.v1.UnifiedBridge/"
_DENIED = "missing or invalid token: send the metadata 'authorization: Bearer <token>'"


def parse_tokens(raw: str) -> list[str]:
    return [token.strip() for token in raw.split(",") if token.strip()]


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, tokens: Sequence[str]) -> None:
        self._expected = [f"Bearer {token}".encode() for token in tokens]

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(_PROTECTED_PREFIX) or self._allows(handler_call_details):
            return handler
        return _denying(handler)

    def _allows(self, details: grpc.HandlerCallDetails) -> bool:
        metadata = details.invocation_metadata or ()
        presented = next((str(value) for key, value in metadata if key == "authorization"), "").encode()
        # Compare with every token, so the time taken does not tell which one nearly matched.
        matches = [hmac.compare_digest(presented, expected) for expected in self._expected]
        return any(matches)


def _denying(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as `handler` that refuses the call."""
    serializers: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:

        async def refuse_stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)
            yield  # pragma: no cover - abort raises; the yield makes this an async generator

        return grpc.unary_stream_rpc_method_handler(refuse_stream, **serializers)

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)

    return grpc.unary_unary_rpc_method_handler(refuse, **serializers)
