"""``AsyncSessionContext``: the asyncio session API. A thin shell: decisions live in ``_core``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

import grpc.aio

from unified_bridge._cache import MISS
from unified_bridge._calls import (
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUT,
    Flow,
    RetryPolicy,
    async_invoker,
    run_flow_async,
)
from unified_bridge._core import DEFAULT_CACHE_TTL, DEFAULT_UPDATE_ATTEMPTS, SessionCore, delete_session
from unified_bridge._models import ChangeEvent
from unified_bridge._proxy import AsyncVariableProxy, BatchUpdater
from unified_bridge._session import ttl_seconds
from unified_bridge._transport import AsyncTransport
from unified_bridge._watch import MIN_OPEN_TIMEOUT, StreamBackoff, TaskFollower, WatchCursor, aiter_changes
from unified_bridge.errors import BridgeError
from unified_bridge.types import VariableType, validate_session_id

__all__ = ["AsyncSessionContext", "not_pending"]

logger = logging.getLogger("unified_bridge")

T = TypeVar("T")


def async_transport_for(stub_or_channel: Any) -> AsyncTransport:
    if isinstance(stub_or_channel, AsyncTransport):
        return stub_or_channel
    if isinstance(stub_or_channel, grpc.aio.Channel):
        return AsyncTransport(channel=stub_or_channel)
    if hasattr(stub_or_channel, "GetVariable"):
        return AsyncTransport(stub=stub_or_channel)
    raise TypeError(
        f"Expected a UnifiedBridgeStub on a grpc.aio channel, got {type(stub_or_channel).__name__}"
    )


def not_pending(name: str) -> Any:
    raise KeyError(f"{name!r} was not written in this batch; read it with 'await ctx.get_variable()'")


class AsyncSessionContext:
    """The asyncio twin of :class:`~unified_bridge.SessionContext`.

    The session is created (if missing) and the watch stream started on ``async with`` or on the first
    call; ``await ctx.close()`` (or leaving the block) stops the background task.

    >>> async with AsyncSessionContext(stub, "run-1") as ctx:   # doctest: +SKIP
    ...     await ctx.register_variable("lr", VariableType.FLOAT, 0.01)
    ...     await ctx.update("lr", lambda v: v / 2)
    """

    def __init__(
        self,
        stub_or_channel: Any,
        session_id: str | None = None,
        *,
        ttl: float | None = None,
        metadata: Mapping[str, str] | None = None,
        cache: bool = True,
        cache_ttl: timedelta | float = DEFAULT_CACHE_TTL,
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        stream_backoff: StreamBackoff | None = None,
        owns_transport: bool = False,
    ) -> None:
        if session_id is not None:
            validate_session_id(session_id)
        self._transport = async_transport_for(stub_or_channel)
        self._owns_transport = owns_transport
        self._timeout = timeout
        self._invoke = async_invoker(self._transport.stub, timeout, retry_policy)
        self._core = SessionCore(session_id or "", cache_ttl=ttl_seconds(cache_ttl))
        self._lookup = self._core.cache.lookup
        self._session_args = (ttl, dict(metadata or {}))
        self._cache_enabled = cache
        self._backoff = stream_backoff or StreamBackoff(open_timeout=max(timeout, MIN_OPEN_TIMEOUT))
        self._follower: TaskFollower | None = None
        self._started = False
        self._start_lock: asyncio.Lock | None = None
        self._closed = False
        self._update_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def _attached(
        cls,
        transport: AsyncTransport,
        session_id: str,
        revision: int,
        *,
        cache: bool,
        cache_ttl: timedelta | float,
        timeout: float,
        retry_policy: RetryPolicy,
    ) -> AsyncSessionContext:
        """A started context on a session known to exist at ``revision`` (just imported), made without
        a call; the cache serves once its stream has caught up. Call it inside the running loop."""
        ctx = cls(
            transport,
            session_id,
            cache=cache,
            cache_ttl=cache_ttl,
            timeout=timeout,
            retry_policy=retry_policy,
        )
        ctx._core.note_revision(revision)
        if cache:
            ctx._follower = TaskFollower(ctx._core, ctx._transport, ctx._backoff)
            ctx._follower.start()
        ctx._started = True
        return ctx

    # --- plumbing --------------------------------------------------------------------------------

    async def _run(self, flow: Flow[T]) -> T:
        if not self._started or self._closed:
            await self.start()  # raises once closed
        return await run_flow_async(flow, self._invoke)

    async def start(self) -> AsyncSessionContext:
        """Create the session if missing and start following its change stream (idempotent)."""
        if self._closed:
            raise BridgeError("This session context is closed")
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return self
            ttl, metadata = self._session_args
            await run_flow_async(self._core.create_session(ttl, metadata), self._invoke)
            if self._cache_enabled:
                self._follower = TaskFollower(self._core, self._transport, self._backoff)
                self._follower.start()
                try:
                    await asyncio.wait_for(self._follower.wait_ready(), self._timeout)
                except TimeoutError:
                    logger.warning(
                        "session %s: watch stream not caught up yet; reads bypass the cache", self.session_id
                    )
            self._started = True
        return self

    @property
    def session_id(self) -> str:
        return self._core.session_id

    @property
    def revision(self) -> int:
        return self._core.revision

    @property
    def watch_target(self) -> str | None:
        return None if self._follower is None else self._follower.target

    async def wait_for_cache(self) -> None:
        """Wait until the watch stream is caught up and the cache serves."""
        if not self._started:
            await self.start()
        if self._follower is not None:
            await self._follower.wait_ready()

    # --- variables -------------------------------------------------------------------------------

    async def register_variable(
        self,
        name: str,
        type: VariableType | str,
        value: Any,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> str:
        info, _ = await self._run(self._core.register(name, type, value, constraints, metadata, description))
        return info.id

    async def get_variable(self, name_or_id: str) -> Any:
        value = self._lookup(name_or_id)
        if value is not MISS:
            return value
        return await self._run(self._core.get(name_or_id))

    async def get_variable_info(self, name_or_id: str) -> dict[str, Any]:
        info = await self._run(self._core.fetch(name_or_id))
        return info.as_dict()

    async def get_variables(self, names: Iterable[str]) -> dict[str, Any]:
        return await self._run(self._core.get_many(names))

    async def update_variable(self, name_or_id: str, value: Any, expected_version: int | None = None) -> int:
        return await self._run(self._core.set(name_or_id, value, expected_version))

    async def update_variables(
        self, updates: Mapping[str, Any], atomic: bool = False
    ) -> dict[str, bool | str]:
        return await self._run(self._core.set_many(updates, atomic))

    async def update(
        self, name_or_id: str, fn: Callable[[Any], Any], *, max_attempts: int = DEFAULT_UPDATE_ATTEMPTS
    ) -> Any:
        # Tasks of one context updating one variable queue here rather than fail each other's
        # compare-and-set (see SessionContext.update).
        async with self._update_locks.setdefault(name_or_id, asyncio.Lock()):
            return await self._run(self._core.update(name_or_id, fn, max_attempts))

    async def delete_variable(self, name_or_id: str) -> None:
        await self._run(self._core.delete(name_or_id))

    async def list_variables(self, pattern: str | None = None) -> list[dict[str, Any]]:
        return await self._run(self._core.list(pattern))

    async def contains(self, name: str) -> bool:
        """``name in ctx`` for asyncio."""
        return await self._run(self._core.contains(name))

    async def set(self, name: str, value: Any) -> None:
        """``ctx[name] = value`` for asyncio: update, or register with an inferred type when new."""
        await self._run(self._core.set_item(name, value))

    async def watch(
        self, names: Iterable[str] | None = None, *, from_revision: int | None = None
    ) -> AsyncIterator[ChangeEvent]:
        """Change events after ``from_revision`` (default: the last revision this context had seen when
        the iteration started), for all variables or only ``names``; reconnects by itself."""
        if not self._started:
            await self.start()
        cursor = WatchCursor(
            self.session_id,
            self._core.revision if from_revision is None else from_revision,
            len(self._transport.watch_target_names),
            StreamBackoff(open_timeout=max(self._timeout, MIN_OPEN_TIMEOUT)),
        )
        wanted = None if names is None else frozenset(names)
        async for event in aiter_changes(self._transport.watch_stub, cursor, wanted):
            yield event

    def variable(self, name: str) -> AsyncVariableProxy:
        return AsyncVariableProxy(self, name)

    @asynccontextmanager
    async def batch_updates(self, atomic: bool = False) -> AsyncIterator[BatchUpdater]:
        """``async with ctx.batch_updates() as batch: batch["a"] = 1`` -- one call at the end."""
        batch = BatchUpdater(not_pending)
        yield batch
        if batch.pending:
            batch.results = await self.update_variables(batch.pending, atomic=atomic)

    # --- cache -----------------------------------------------------------------------------------

    def set_cache_ttl(self, ttl: timedelta | float) -> None:
        self._core.cache.ttl = ttl_seconds(ttl)
        self._core.cache.clear()

    def clear_cache(self) -> None:
        self._core.cache.clear()

    def cache_stats(self) -> dict[str, float]:
        return self._core.cache.stats().as_dict()

    # --- lifecycle -------------------------------------------------------------------------------

    async def delete_session(self) -> bool:
        deleted = await self._run(delete_session(self.session_id))
        await self.close()
        return deleted

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._follower is not None:
            await self._follower.stop()
        self._core.cache.stop_serving()
        if self._owns_transport:
            await self._transport.close()

    async def __aenter__(self) -> AsyncSessionContext:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncSessionContext(session_id={self.session_id!r})"
