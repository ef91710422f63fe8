"""Bearer-token authentication of the UnifiedBridge service (health and reflection stay open).

Every call must carry the metadata `authorization: Bearer <token>`. The accepted tokens are those of
`--auth-tokens a,b` (admin tokens; several let operators rotate them without downtime) and those of
the access file `--auth-file` (each with a name and a scope: see `bridge_server.scopes`). A call
without a known token is UNAUTHENTICATED; a known one becomes this call's caller
(`bridge_server.access.CALLER`), whose scope the handlers check against the request. Tokens are
compared in constant time and never logged; a token's name may be.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from bridge_server.access import CALLER
from bridge_server.scopes import Keyring

__all__ = ["TokenAuthInterceptor", "parse_tokens"]

_PROTECTED_PREFIX = "/unified_bridge.v1.UnifiedBridge/"
_BEARER = "Bearer "
_DENIED = "missing or invalid token: send the metadata 'authorization: Bearer <token>'"


def parse_tokens(raw: str) -> list[str]:
    return [token.strip() for token in raw.split(",") if token.strip()]


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, keyring: Keyring) -> None:
        #: Replaced whole on a reload of the access file; each call reads it once.
        self.keyring = keyring

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(_PROTECTED_PREFIX):
            return handler
        caller = self.keyring.identify(_presented_token(handler_call_details))
        if caller is None:
            return _denying(handler)
        # The interceptor and the handler run in the call's own task: the handler sees this.
        CALLER.set(caller)
        return handler


def _presented_token(details: grpc.HandlerCallDetails) -> str:
    metadata = details.invocation_metadata or ()
    header = next((str(value) for key, value in metadata if key == "authorization"), "")
    # No "Bearer " prefix: hash an empty token, which matches nothing, in the same time.
    return header[len(_BEARER) :] if header.startswith(_BEARER) else ""


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
