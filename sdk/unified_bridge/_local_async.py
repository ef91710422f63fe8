"""``AsyncLocalSessionContext``: the asyncio twin of :class:`LocalSessionContext`.

Every method is a coroutine for the sake of one API with :class:`AsyncSessionContext`; none of them
waits on anything but ``watch``, which waits for the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from unified_bridge._async_session import not_pending
from unified_bridge._core import DEFAULT_UPDATE_ATTEMPTS
from unified_bridge._local_store import LocalStore, WatchPosition
from unified_bridge._local_view import LocalStoreView
from unified_bridge._models import ChangeEvent
from unified_bridge._proxy import AsyncVariableProxy, BatchUpdater
from unified_bridge.types import VariableType

__all__ = ["AsyncLocalSessionContext", "aiter_local_changes"]


async def aiter_local_changes(store: LocalStore, position: WatchPosition) -> AsyncIterator[ChangeEvent]:
    """The asyncio twin of :func:`~unified_bridge._local_session.iter_local_changes`; writers in any
    thread wake it."""
    loop = asyncio.get_running_loop()
    wakeup = asyncio.Event()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(wakeup.set)

    store.listen(wake)
    try:
        while True:
            wakeup.clear()
            events, finished = store.pending_events(position)
            for event in events:
                yield event
            if finished:
                return
            await wakeup.wait()
    finally:
        store.unlisten(wake)


class AsyncLocalSessionContext(LocalStoreView):
    """A session's variables in this process, with the API of
    :class:`~unified_bridge.AsyncSessionContext`.

    >>> async with AsyncLocalSessionContext() as ctx:   # doctest: +SKIP
    ...     await ctx.register_variable("lr", "float", 0.01)
    ...     await ctx.update("lr", lambda v: v / 2)
    """

    async def start(self) -> AsyncLocalSessionContext:
        """Nothing to start: here for the API of the bridged context."""
        self._store.check_readable()
        return self

    async def wait_for_cache(self) -> None:
        return None

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
        info, _ = self._store.register(name, type, value, constraints, metadata, description)
        return info.id

    async def get_variable(self, name_or_id: str) -> Any:
        try:
            return self._fast[name_or_id]
        except KeyError:
            return self._store.get(name_or_id)

    async def get_variable_info(self, name_or_id: str) -> dict[str, Any]:
        return self._store.info(name_or_id).as_dict()

    async def get_variables(self, names: Iterable[str]) -> dict[str, Any]:
        return self._store.get_many(names)

    async def update_variable(self, name_or_id: str, value: Any, expected_version: int | None = None) -> int:
        return self._store.set(name_or_id, value, expected_version)

    async def update_variables(
        self, updates: Mapping[str, Any], atomic: bool = False
    ) -> dict[str, bool | str]:
        return self._store.set_many(updates, atomic)

    async def update(
        self, name_or_id: str, fn: Callable[[Any], Any], *, max_attempts: int = DEFAULT_UPDATE_ATTEMPTS
    ) -> Any:
        return self._store.update(name_or_id, fn)

    async def delete_variable(self, name_or_id: str) -> None:
        self._store.delete(name_or_id)

    async def list_variables(self, pattern: str | None = None) -> list[dict[str, Any]]:
        return [info.as_dict() for info in self._store.listing(pattern)]

    async def contains(self, name: str) -> bool:
        """``name in ctx`` for asyncio."""
        return isinstance(name, str) and self._store.contains(name)

    async def set(self, name: str, value: Any) -> None:
        """``ctx[name] = value`` for asyncio: update, or register with an inferred type when new."""
        self._store.set_item(name, value)

    async def watch(
        self, names: Iterable[str] | None = None, *, from_revision: int | None = None
    ) -> AsyncIterator[ChangeEvent]:
        """Change events after ``from_revision`` (default: the revision when the iteration started)."""
        position = self._watch_position(names, from_revision)
        async for event in aiter_local_changes(self._store, position):
            yield event

    def variable(self, name: str) -> AsyncVariableProxy:
        return AsyncVariableProxy(self, name)

    @asynccontextmanager
    async def batch_updates(self, atomic: bool = False) -> AsyncIterator[BatchUpdater]:
        batch = BatchUpdater(not_pending)
        yield batch
        if batch.pending:
            batch.results = await self.update_variables(batch.pending, atomic=atomic)

    # --- lifecycle -------------------------------------------------------------------------------

    async def delete_session(self) -> bool:
        return self._delete_now()

    async def close(self) -> None:
        self._store.retire(close=True)

    async def __aenter__(self) -> AsyncLocalSessionContext:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncLocalSessionContext(session_id={self.session_id!r})"
