"""``AsyncLocalFirstContext``: the asyncio twin of :class:`~unified_bridge.LocalFirstContext`.

The move itself (snapshot, import, bookkeeping) is :mod:`unified_bridge._switch`, shared with the
blocking context; this module only waits the asyncio way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from types import TracebackType
from typing import Any

from unified_bridge._async_session import AsyncSessionContext, not_pending
from unified_bridge._client import AsyncBridgeClient, connect_async
from unified_bridge._core import DEFAULT_CACHE_TTL, DEFAULT_UPDATE_ATTEMPTS
from unified_bridge._local_async import AsyncLocalSessionContext, aiter_local_changes
from unified_bridge._local_first_base import LocalFirstBase
from unified_bridge._local_store import SESSION_DELETED, WatchPosition
from unified_bridge._models import ChangeEvent
from unified_bridge._proxy import AsyncVariableProxy, BatchUpdater
from unified_bridge._rules import SessionLimits
from unified_bridge._switch import needs_bridge, next_import
from unified_bridge.errors import BridgeError
from unified_bridge.types import VariableType

__all__ = ["AsyncBridge", "AsyncLocalFirstContext", "local_first_async"]

#: Where an asyncio local-first context may move: a client, or targets to connect to.
AsyncBridge = AsyncBridgeClient | str | Sequence[str]

_Active = AsyncLocalSessionContext | AsyncSessionContext


class AsyncWriteGate:
    """Writers (tasks) share it, a switch holds it alone, readers never touch it."""

    def __init__(self) -> None:
        self._writers = 0
        self._switching = False
        self._opened: asyncio.Event | None = None
        self._drained: asyncio.Event | None = None

    async def enter(self) -> None:
        while self._switching and self._opened is not None:
            await self._opened.wait()
        self._writers += 1

    def leave(self) -> None:
        self._writers -= 1
        if self._writers == 0 and self._drained is not None:
            self._drained.set()

    @asynccontextmanager
    async def exclusive(self, timeout: float | None) -> AsyncIterator[None]:
        while self._switching and self._opened is not None:
            await self._opened.wait()
        self._switching = True
        self._opened = asyncio.Event()
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._writers:
                self._drained = asyncio.Event()
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
                try:
                    await asyncio.wait_for(self._drained.wait(), remaining)
                except TimeoutError:
                    raise BridgeError(
                        f"writers were still busy after {timeout} s; the session stays local"
                    ) from None
            yield
        finally:
            self._switching = False
            self._drained = None
            self._opened.set()


class AsyncLocalFirstContext(LocalFirstBase[AsyncBridgeClient]):
    """A session that starts in process and moves to the bridge when it must be shared (asyncio).

    >>> async with AsyncLocalFirstContext(bridge="127.0.0.1:50051") as ctx:   # doctest: +SKIP
    ...     await ctx.set("temperature", 0.7)
    ...     await ctx.ensure_bridged()
    """

    def __init__(
        self,
        session_id: str | None = None,
        *,
        bridge: AsyncBridge | None = None,
        start_bridged: bool = False,
        metadata: Mapping[str, str] | None = None,
        limits: SessionLimits | None = None,
        ttl: float | None = None,
        cache: bool = True,
        cache_ttl: timedelta | float = DEFAULT_CACHE_TTL,
    ) -> None:
        self._init_state(session_id, bridge, metadata, limits, ttl, cache, cache_ttl)
        self._active: _Active = AsyncLocalSessionContext._over(self._store)
        self._start_bridged = start_bridged
        self._gate = AsyncWriteGate()

    async def start(self) -> AsyncLocalFirstContext:
        """Open the bridged session now if ``start_bridged`` was asked for (idempotent)."""
        if self._start_bridged and self._log.kind == "local":
            client = await self._client_for(None)
            self._active = await client.session(
                self._store.session_id,
                ttl=self._ttl,
                metadata=self._metadata,
                cache=self._cache,
                cache_ttl=self._cache_ttl,
            )
            self._log.kind = "bridged"
            self._store.retire(close=False)
        return self

    # --- the backend -----------------------------------------------------------------------------

    _client_class = AsyncBridgeClient

    def _connect(self, target: Any) -> AsyncBridgeClient:
        return connect_async(target)

    async def _client_for(self, bridge: AsyncBridge | None) -> AsyncBridgeClient:
        client, replaced = self._choose_client(bridge)
        if replaced is not None:
            await replaced.close()
        return client

    async def ensure_bridged(self, bridge: AsyncBridge | None = None, timeout: float | None = None) -> None:
        """Move the session to the bridge (see :meth:`LocalFirstContext.ensure_bridged`)."""
        if self._log.kind == "bridged":
            return
        client = await self._client_for(bridge)
        started = time.perf_counter()
        try:
            async with self._gate.exclusive(timeout):
                if self.is_bridged:
                    return
                self._pending = pending = next_import(self._store.snapshot(), self._pending, self._ttl)
                result = await client._import(pending.request, timeout)
                self._pending = None
                self._active = client._attach(
                    result.session_id, result.revision, cache=self._cache, cache_ttl=self._cache_ttl
                )
                self._log.succeeded(started)
                self._store.retire(close=False)
        except BridgeError as exc:
            self._log.failed(started, exc)
            raise
        except Exception as exc:
            self._log.failed(started, BridgeError(f"{type(exc).__name__}: {exc}"))
            raise

    async def register_program(self, name: str, spec: Any, requires_bridge: bool | None = None) -> None:
        """See :meth:`LocalFirstContext.register_program`."""
        if needs_bridge(spec, requires_bridge):
            await self.ensure_bridged()
        self._programs[name] = spec

    # --- plumbing --------------------------------------------------------------------------------

    async def _write(self, operation: Callable[[_Active], Awaitable[Any]]) -> Any:
        await self._gate.enter()
        try:
            return await operation(self._active)
        finally:
            self._gate.leave()

    @property
    def revision(self) -> int:
        return self._active.revision

    @property
    def watch_target(self) -> str | None:
        return self._active.watch_target

    async def wait_for_cache(self) -> None:
        await self._active.wait_for_cache()

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
        return await self._write(  # type: ignore[no-any-return]
            lambda active: active.register_variable(name, type, value, constraints, metadata, description)
        )

    async def get_variable(self, name_or_id: str) -> Any:
        return await self._active.get_variable(name_or_id)

    async def get_variable_info(self, name_or_id: str) -> dict[str, Any]:
        return await self._active.get_variable_info(name_or_id)

    async def get_variables(self, names: Iterable[str]) -> dict[str, Any]:
        return await self._active.get_variables(names)

    async def update_variable(self, name_or_id: str, value: Any, expected_version: int | None = None) -> int:
        return await self._write(  # type: ignore[no-any-return]
            lambda active: active.update_variable(name_or_id, value, expected_version)
        )

    async def update_variables(
        self, updates: Mapping[str, Any], atomic: bool = False
    ) -> dict[str, bool | str]:
        return await self._write(lambda active: active.update_variables(updates, atomic))  # type: ignore[no-any-return]

    async def update(
        self, name_or_id: str, fn: Callable[[Any], Any], *, max_attempts: int = DEFAULT_UPDATE_ATTEMPTS
    ) -> Any:
        return await self._write(lambda active: active.update(name_or_id, fn, max_attempts=max_attempts))

    async def delete_variable(self, name_or_id: str) -> None:
        await self._write(lambda active: active.delete_variable(name_or_id))

    async def list_variables(self, pattern: str | None = None) -> list[dict[str, Any]]:
        return await self._active.list_variables(pattern)

    async def contains(self, name: str) -> bool:
        return await self._active.contains(name)

    async def set(self, name: str, value: Any) -> None:
        await self._write(lambda active: active.set(name, value))

    async def watch(
        self, names: Iterable[str] | None = None, *, from_revision: int | None = None
    ) -> AsyncIterator[ChangeEvent]:
        """Change events after ``from_revision``; goes on across a switch without a gap."""
        wanted = None if names is None else frozenset(names)
        revision = self.revision if from_revision is None else from_revision
        store = self._store
        if not store.closed and (self._log.kind == "local" or revision < store.revision):
            position = WatchPosition(revision, wanted)
            async for event in aiter_local_changes(store, position):
                yield event
                if event.kind == SESSION_DELETED:
                    return
            if self._log.kind != "bridged":
                return
            revision = position.revision
        async for event in self._active.watch(wanted, from_revision=revision):
            yield event

    def variable(self, name: str) -> AsyncVariableProxy:
        return AsyncVariableProxy(self, name)

    @asynccontextmanager
    async def batch_updates(self, atomic: bool = False) -> AsyncIterator[BatchUpdater]:
        batch = BatchUpdater(not_pending)
        yield batch
        if batch.pending:
            batch.results = await self.update_variables(batch.pending, atomic=atomic)

    # --- cache -----------------------------------------------------------------------------------

    def set_cache_ttl(self, ttl: timedelta | float) -> None:
        self._active.set_cache_ttl(ttl)

    def clear_cache(self) -> None:
        self._active.clear_cache()

    def cache_stats(self) -> dict[str, float]:
        return self._active.cache_stats()

    # --- lifecycle -------------------------------------------------------------------------------

    async def delete_session(self) -> bool:
        deleted: bool = await self._write(lambda active: active.delete_session())
        await self.close()
        return deleted

    async def close(self) -> None:
        await self._active.close()
        self._store.retire(close=True)
        if (owned := self._owned_client()) is not None:
            await owned.close()

    async def __aenter__(self) -> AsyncLocalFirstContext:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncLocalFirstContext(session_id={self.session_id!r}, backend={self._log.kind!r})"


def local_first_async(
    session_id: str | None = None,
    *,
    bridge: AsyncBridge | None = None,
    start_bridged: bool = False,
    metadata: Mapping[str, str] | None = None,
    limits: SessionLimits | None = None,
    ttl: float | None = None,
    cache: bool = True,
    cache_ttl: timedelta | float = DEFAULT_CACHE_TTL,
) -> AsyncLocalFirstContext:
    """An :class:`AsyncLocalFirstContext` (``async with local_first_async(...) as ctx``)."""
    return AsyncLocalFirstContext(
        session_id,
        bridge=bridge,
        start_bridged=start_bridged,
        metadata=metadata,
        limits=limits,
        ttl=ttl,
        cache=cache,
        cache_ttl=cache_ttl,
    )
