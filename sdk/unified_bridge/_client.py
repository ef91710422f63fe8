"""``connect()``: clients for one frontend or several, and the sessions they open."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import grpc

from unified_bridge._async_session import AsyncSessionContext
from unified_bridge._calls import (
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    async_invoker,
    invoker,
    run_flow,
    run_flow_async,
)
from unified_bridge._core import DEFAULT_CACHE_TTL, delete_session, list_sessions
from unified_bridge._models import SessionSnapshot
from unified_bridge._session import SessionContext
from unified_bridge._switch import ImportResult, import_request, import_session
from unified_bridge._transport import AsyncTransport, SyncTransport, channel_credentials, parse_targets
from unified_bridge.proto import unified_bridge_pb2 as pb2

__all__ = ["AsyncBridgeClient", "BridgeClient", "connect", "connect_async"]


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
        tls: bool = False,
        root_certificates: bytes | None = None,
        client_cert: bytes | None = None,
        client_key: bytes | None = None,
    ) -> None:
        self.targets = parse_targets(target)
        self._timeout = timeout
        self._retry_policy = retry_policy
        credentials = channel_credentials(
            credentials,
            tls=tls,
            root_certificates=root_certificates,
            client_cert=client_cert,
            client_key=client_key,
        )
        self._transport = SyncTransport(self.targets, options=options, credentials=credentials, token=token)
        self._invoke = invoker(self._transport.stub, timeout, retry_policy)
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
            timeout=self._timeout,
            retry_policy=self._retry_policy,
        )
        self._sessions.add(ctx)
        return ctx

    def list_sessions(self) -> list[str]:
        """Every session id on the server."""
        return run_flow(list_sessions(), self._invoke)

    def import_session(
        self,
        snapshot: SessionSnapshot,
        *,
        ttl: float | None = None,
        migrated_from: str = "import",
        migrated_at: datetime | None = None,
    ) -> ImportResult:
        """Create ``snapshot``'s session on the bridge, ids, versions and timestamps kept, all or nothing.

        Every variable and the session are marked ``migrated_from`` and ``migrated_at`` (default: now).
        The frontend knows an import by its whole content, marks included: repeating a call with the
        same ``migrated_at`` is harmless (``imported=False``), also after a lost reply; a session that
        already exists with other content, a second call stamped with another time included, raises
        AlreadyExistsError.
        """
        request = import_request(snapshot, ttl=ttl, migrated_from=migrated_from, migrated_at=migrated_at)
        return self._import(request, None)

    def _import(self, request: pb2.ImportSessionRequest, timeout: float | None) -> ImportResult:
        invoke = (
            self._invoke if timeout is None else invoker(self._transport.stub, timeout, self._retry_policy)
        )
        return run_flow(import_session(request), invoke)

    def _attach(
        self, session_id: str, revision: int, *, cache: bool, cache_ttl: timedelta | float
    ) -> SessionContext:
        """A context on a session this client just imported (see ``SessionContext._attached``)."""
        ctx = SessionContext._attached(
            self._transport,
            session_id,
            revision,
            cache=cache,
            cache_ttl=cache_ttl,
            timeout=self._timeout,
            retry_policy=self._retry_policy,
        )
        self._sessions.add(ctx)
        return ctx

    def delete_session(self, session_id: str) -> bool:
        """Delete a session and all its variables; False if there was none."""
        return run_flow(delete_session(session_id), self._invoke)

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
        tls: bool = False,
        root_certificates: bytes | None = None,
        client_cert: bytes | None = None,
        client_key: bytes | None = None,
    ) -> None:
        self.targets = parse_targets(target)
        self._timeout = timeout
        self._retry_policy = retry_policy
        credentials = channel_credentials(
            credentials,
            tls=tls,
            root_certificates=root_certificates,
            client_cert=client_cert,
            client_key=client_key,
        )
        self._transport = AsyncTransport(self.targets, options=options, credentials=credentials, token=token)
        self._invoke = async_invoker(self._transport.stub, timeout, retry_policy)
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
            timeout=self._timeout,
            retry_policy=self._retry_policy,
        )
        self._sessions.add(ctx)
        return await ctx.start()

    async def list_sessions(self) -> list[str]:
        return await run_flow_async(list_sessions(), self._invoke)

    async def import_session(
        self,
        snapshot: SessionSnapshot,
        *,
        ttl: float | None = None,
        migrated_from: str = "import",
        migrated_at: datetime | None = None,
    ) -> ImportResult:
        """The asyncio twin of :meth:`BridgeClient.import_session`."""
        request = import_request(snapshot, ttl=ttl, migrated_from=migrated_from, migrated_at=migrated_at)
        return await self._import(request, None)

    async def _import(self, request: pb2.ImportSessionRequest, timeout: float | None) -> ImportResult:
        invoke = (
            self._invoke
            if timeout is None
            else async_invoker(self._transport.stub, timeout, self._retry_policy)
        )
        return await run_flow_async(import_session(request), invoke)

    def _attach(
        self, session_id: str, revision: int, *, cache: bool, cache_ttl: timedelta | float
    ) -> AsyncSessionContext:
        ctx = AsyncSessionContext._attached(
            self._transport,
            session_id,
            revision,
            cache=cache,
            cache_ttl=cache_ttl,
            timeout=self._timeout,
            retry_policy=self._retry_policy,
        )
        self._sessions.add(ctx)
        return ctx

    async def delete_session(self, session_id: str) -> bool:
        return await run_flow_async(delete_session(session_id), self._invoke)

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
    tls: bool = False,
    root_certificates: bytes | None = None,
    client_cert: bytes | None = None,
    client_key: bytes | None = None,
) -> BridgeClient:
    """A blocking client for ``"host:port"`` or ``"h1:port,h2:port"`` (round-robin over frontends).

    ``timeout`` is the deadline of every call, retries included. ``token`` is sent as
    ``authorization: Bearer <token>`` to frontends started with ``--auth-tokens``.

    TLS (frontends started with ``--tls-cert``/``--tls-key``): ``tls=True`` trusts the system's CAs;
    ``root_certificates`` (PEM bytes) trusts those CAs instead; ``client_cert`` and ``client_key``
    (PEM bytes, both or neither) are this client's certificate for mutual TLS (``--tls-client-ca``).
    Any of the three implies ``tls``. ``credentials`` (your own ``grpc.ChannelCredentials``) is the
    alternative to these options, not an addition (ValidationError, a ValueError, for both).

    >>> ca = Path("ca.pem").read_bytes()                             # doctest: +SKIP
    >>> client = connect("bridge.internal:50051", root_certificates=ca, token="s3cret")  # doctest: +SKIP
    """
    return BridgeClient(
        target,
        timeout=timeout,
        retry_policy=retry_policy,
        options=options,
        credentials=credentials,
        token=token,
        tls=tls,
        root_certificates=root_certificates,
        client_cert=client_cert,
        client_key=client_key,
    )


def connect_async(
    target: str | Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    options: Sequence[tuple[str, Any]] = (),
    credentials: grpc.ChannelCredentials | None = None,
    token: str | None = None,
    tls: bool = False,
    root_certificates: bytes | None = None,
    client_cert: bytes | None = None,
    client_key: bytes | None = None,
) -> AsyncBridgeClient:
    """The asyncio twin of :func:`connect` (call it inside a running event loop)."""
    return AsyncBridgeClient(
        target,
        timeout=timeout,
        retry_policy=retry_policy,
        options=options,
        credentials=credentials,
        token=token,
        tls=tls,
        root_certificates=root_certificates,
        client_cert=client_cert,
        client_key=client_key,
    )
