"""Bearer-token metadata on every call of a client's channels (plain or TLS alike)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

__all__ = ["async_token_interceptors", "with_token"]


def _metadata_with(token: str, metadata: Any) -> tuple[tuple[str, str | bytes], ...]:
    return (*(metadata or ()), ("authorization", f"Bearer {token}"))


class _ClientCallDetails(grpc.ClientCallDetails):
    def __init__(self, details: Any, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


# grpc's interceptor bases are generic only in the type stubs (subscripting fails at run time).
class _SyncTokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: Any) -> _ClientCallDetails:
        return _ClientCallDetails(details, _metadata_with(self._token, details.metadata))

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


def with_token(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    """The channel, sending `authorization: Bearer <token>` on every call when a token is given."""
    if not token:
        return channel
    return grpc.intercept_channel(channel, _SyncTokenInterceptor(token))


class _AsyncUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(
            details._replace(metadata=_metadata_with(self._token, details.metadata)), request
        )


class _AsyncUnaryStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(
            details._replace(metadata=_metadata_with(self._token, details.metadata)), request
        )


def async_token_interceptors(token: str | None) -> list[Any]:
    return [_AsyncUnaryUnary(token), _AsyncUnaryStream(token)] if token else []
