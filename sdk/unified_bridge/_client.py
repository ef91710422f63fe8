"""``connect()``: clients for one frontend or several, and the sessions they open."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

import grpc

from unified_bridge._async_session import AsyncSessionContext
from unified_bridge._calls import (
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    call_unary,
    call_unary_async,
)
from unified_bridge._core import DEFAULT_CACHE_TTL
from unified_bridge._session import SessionContext
from unified_bridge._transport import AsyncTransport, SyncTransport, parse_targets
from unified_bridge.proto import unified_bridge_pb2 as pb2

__all__ = ["AsyncBridgeClient", "BridgeClient", "connect", "connect_async"]


class _ClientSettings:
    def __init__(self, timeout: float, retry_policy: RetryPolicy) -> None:
        self.timeout = timeout
        self.retry_policy = retry_policy


class BridgeClient:
    """A blocking client: one round-robin channel over every frontend given.

    >>> with connect("10.0.0.1:50051,10.0.0.2:50051") as client:   # doctest: +SKIP
    ...     with client.session("run-1") as ctx:
    ...         ctx["lr"] = 0.01
    """

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        options: Sequence[tuple[str, Any]] = (),
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.targets = parse_targets(target)
        self._settings = _ClientSettings(timeout, retry_policy)
        self._transport = SyncTransport(self.targets, options=options, credentials=credentials, token=token)
        self._sessions: weakref.WeakSet[SessionContext] = weakref.WeakSet()

    def session(
        self,
        session_id: str | None = None,
        *,
        ttl: float | None = None,
        metadata: Mapping[str, str] | None = None,
        cache: bool = True,
        cache_ttl: timedelta | float = DEFAULT_CACHE_TTL,
    ) -> SessionContext:
        """Open (creating if missing) a session; ``session_id=None`` lets the server pick one."""
        ctx = SessionContext(
            self._transport,
            session_id,
            ttl=ttl,
            metadata=metadata,
            cache=cache,
            cache_ttl=cache_ttl,
            timeout=self._settings.timeout,
            retry_policy=self._settings.retry_policy,
        )
        self._sessions.add(ctx)
        return ctx

    def list_sessions(self) -> list[str]:
        ids: list[str] = []
        token = ""
        while True:
            request = pb2.ListSessionsRequest(page_token=token)
            response: pb2.ListSessionsResponse = self._call("ListSessions", request)
            ids.extend(response.session_ids)
            token = response.next_page_token
            if not token:
                return ids

    def delete_session(self, session_id: str) -> bool:
        response: pb2.DeleteSessionResponse = self._call(
            "DeleteSession", pb2.DeleteSessionRequest(session_id=session_id)
        )
        return response.deleted

    def _call(self, method: str, request: Any) -> Any:
        return call_unary(
            getattr(self._transport.stub, method),
            request,
            timeout=self._settings.timeout,
            retry=True,  # every client-level call is idempotent
            policy=self._settings.retry_policy,
        )

    def close(self) -> None:
        """Close every session opened from this client, then the channels."""
        for ctx in list(self._sessions):
            ctx.close()
        self._transport.close()

    def __enter__(self) -> BridgeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncBridgeClient:
    """The asyncio client (``grpc.aio``); create it inside a running event loop."""

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        options: Sequence[tuple[str, Any]] = (),
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.targets = parse_targets(target)
        self._settings = _ClientSettings(timeout, retry_policy)
        self._transport = AsyncTransport(self.targets, options=options, credentials=credentials, token=token)
        self._sessions: weakref.WeakSet[AsyncSessionContext] = weakref.WeakSet()

    async def session(
        self,
        session_id: str | None = None,
        *,
        ttl: float | None = None,
        metadata: Mapping[str, str] | None = None,
        cache: bool = True,
        cache_ttl: timedelta | float = DEFAULT_CACHE_TTL,
    ) -> AsyncSessionContext:
        """Open (creating if missing) a session, started: its cache is following the change stream."""
        ctx = AsyncSessionContext(
            self._transport,
            session_id,
            ttl=ttl,
            metadata=metadata,
            cache=cache,
            cache_ttl=cache_ttl,
            timeout=self._settings.timeout,
            retry_policy=self._settings.retry_policy,
        )
        self._sessions.add(ctx)
        return await ctx.start()

    async def list_sessions(self) -> list[str]:
        ids: list[str] = []
        token = ""
        while True:
            request = pb2.ListSessionsRequest(page_token=token)
            response: pb2.ListSessionsResponse = await self._call("ListSessions", request)
            ids.extend(response.session_ids)
            token = response.next_page_token
            if not token:
                return ids

    async def delete_session(self, session_id: str) -> bool:
        response: pb2.DeleteSessionResponse = await self._call(
            "DeleteSession", pb2.DeleteSessionRequest(session_id=session_id)
        )
        return response.deleted

    async def _call(self, method: str, request: Any) -> Any:
        return await call_unary_async(
            getattr(self._transport.stub, method),
            request,
            timeout=self._settings.timeout,
            retry=True,
            policy=self._settings.retry_policy,
        )

    async def close(self) -> None:
        for ctx in list(self._sessions):
            await ctx.close()
        await self._transport.close()

    async def __aenter__(self) -> AsyncBridgeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def connect(
    target: str | Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    options: Sequence[tuple[str, Any]] = (),
    credentials: grpc.ChannelCredentials | None = None,
    token: str | None = None,
) -> BridgeClient:
    """A blocking client for ``"host:port"`` or ``"h1:port,h2:port"`` (round-robin over frontends).

    ``timeout`` is the deadline of every call, retries included. ``token`` is sent as
    ``authorization: Bearer <token>`` to frontends started with ``--auth-tokens``.
    """
    return BridgeClient(
        target,
        timeout=timeout,
        retry_policy=retry_policy,
        options=options,
        credentials=credentials,
        token=token,
    )


def connect_async(
    target: str | Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    options: Sequence[tuple[str, Any]] = (),
    credentials: grpc.ChannelCredentials | None = None,
    token: str | None = None,
) -> AsyncBridgeClient:
    """The asyncio twin of :func:`connect` (call it inside a running event loop)."""
    return AsyncBridgeClient(
        target,
        timeout=timeout,
        retry_policy=retry_policy,
        options=options,
        credentials=credentials,
        token=token,
    )
