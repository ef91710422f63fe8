"""``LocalSessionContext``: a session held in process, with the API of :class:`SessionContext`.

A thin shell over :class:`~unified_bridge._local_store.LocalStore`, where every rule lives. Nothing
here talks to a frontend: reads are dict lookups and writes validate and bump two integers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from types import TracebackType
from typing import Any

from unified_bridge._core import DEFAULT_UPDATE_ATTEMPTS
from unified_bridge._local_store import SESSION_DELETED, LocalStore, WatchPosition
from unified_bridge._models import ChangeEvent
from unified_bridge._proxy import BatchUpdater, VariableNamespace, VariableProxy
from unified_bridge._rules import SessionLimits
from unified_bridge._session import ttl_seconds
from unified_bridge.types import VariableType

__all__ = ["LocalSessionContext", "iter_local_changes", "local_cache_stats"]


def local_cache_stats() -> dict[str, float]:
    """A local session has no cache: every read is served from the session itself."""
    return {"hits": 0, "misses": 0, "hit_rate": 0.0, "invalidations": 0, "size": 0}


def iter_local_changes(store: LocalStore, position: WatchPosition) -> Iterator[ChangeEvent]:
    """Events after ``position`` from the store's log, then live, until the store retires."""
    wakeup = position.wakeup
    store.listen(wakeup.set)
    try:
        while True:
            wakeup.clear()
            retired = store.retired  # read first: a retired store logs nothing more
            for event in store.events_after(position):
                yield event
                if event.kind == SESSION_DELETED:
                    return
            if retired:
                return
            wakeup.wait()
    finally:
        store.unlisten(wakeup.set)


class LocalSessionContext:
    """A session's variables in this process, with the same methods, idioms, errors and messages as
    :class:`~unified_bridge.SessionContext`.

    >>> with LocalSessionContext() as ctx:
    ...     ctx.register_variable("temperature", "float", 0.7, constraints={"min": 0, "max": 2})
    ...     ctx["temperature"] = 1.2
    ...     ctx.v.temperature
    1.2

    Reads take no lock. Values that can be changed in place (embeddings, tensors) are handed out as
    copies. ``watch`` replays from the last ``limits.change_log_length`` events.
    """

    def __init__(
        self,
        session_id: str | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        self._store = LocalStore(session_id, metadata=metadata, limits=limits)
        self._fast = self._store.fast  # bound once: the read path is a dict lookup
        self.v = VariableNamespace(self)

    @classmethod
    def _over(cls, store: LocalStore) -> LocalSessionContext:
        """A context over an existing store (the local-first context's local backend)."""
        ctx = cls.__new__(cls)
        ctx._store = store
        ctx._fast = store.fast
        ctx.v = VariableNamespace(ctx)
        return ctx

    @property
    def session_id(self) -> str:
        return self._store.session_id

    @property
    def revision(self) -> int:
        """The session's revision: one more per mutation."""
        return self._store.revision

    @property
    def limits(self) -> SessionLimits:
        return self._store.limits

    @property
    def watch_target(self) -> str | None:
        """None: a local session has no stream to follow."""
        return None

    def wait_for_cache(self, timeout: float | None = None) -> bool:
        """True at once: a local session is its own cache."""
        return True

    # --- variables -------------------------------------------------------------------------------

    def register_variable(
        self,
        name: str,
        type: VariableType | str,
        value: Any,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> str:
        """Register a variable and return its id (the same definition again returns the same id)."""
        info, _ = self._store.register(name, type, value, constraints, metadata, description)
        return info.id

    def get_variable(self, name_or_id: str) -> Any:
        try:
            return self._fast[name_or_id]
        except KeyError:
            return self._store.get(name_or_id)

    def get_variable_info(self, name_or_id: str) -> dict[str, Any]:
        return self._store.info(name_or_id).as_dict()

    def get_variables(self, names: Iterable[str]) -> dict[str, Any]:
        """``{name: value}``, all at one revision; VariableNotFoundError if any is missing."""
        return self._store.get_many(names)

    def update_variable(self, name_or_id: str, value: Any, expected_version: int | None = None) -> int:
        return self._store.set(name_or_id, value, expected_version)

    def update_variables(self, updates: Mapping[str, Any], atomic: bool = False) -> dict[str, bool | str]:
        return self._store.set_many(updates, atomic)

    def update(
        self, name_or_id: str, fn: Callable[[Any], Any], *, max_attempts: int = DEFAULT_UPDATE_ATTEMPTS
    ) -> Any:
        """``fn(current)`` written in one step: other writers of this session wait, so no conflict
        (and no retry) can happen; ``max_attempts`` is accepted for the bridged API's sake."""
        return self._store.update(name_or_id, fn)

    def delete_variable(self, name_or_id: str) -> None:
        self._store.delete(name_or_id)

    def list_variables(self, pattern: str | None = None) -> list[dict[str, Any]]:
        return [info.as_dict() for info in self._store.listing(pattern)]

    def watch(
        self, names: Iterable[str] | None = None, *, from_revision: int | None = None
    ) -> Iterator[ChangeEvent]:
        """Change events after ``from_revision`` (default: the current revision), for all variables or
        only ``names``, until the context is closed. Close the iterator to stop."""
        position = WatchPosition(
            self.revision if from_revision is None else from_revision,
            None if names is None else frozenset(names),
        )
        return iter_local_changes(self._store, position)

    # --- cache (a local session has none) --------------------------------------------------------

    def set_cache_ttl(self, ttl: timedelta | float) -> None:
        ttl_seconds(ttl)  # the same check as a bridged context; nothing to expire

    def clear_cache(self) -> None:
        return None

    def cache_stats(self) -> dict[str, float]:
        return local_cache_stats()

    # --- Python idioms ---------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        try:
            return self._fast[name]
        except KeyError:
            return self._store.get(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self._store.set_item(name, value)

    def __delitem__(self, name: str) -> None:
        self._store.delete(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._store.contains(name)

    def variable(self, name: str) -> VariableProxy:
        return VariableProxy(self, name)

    @contextmanager
    def batch_updates(self, atomic: bool = False) -> Iterator[BatchUpdater]:
        """Collect writes and apply them as one mutation when the block ends; nothing if it raises."""
        batch = BatchUpdater(self.get_variable)
        yield batch
        if batch.pending:
            batch.results = self.update_variables(batch.pending, atomic=atomic)

    # --- lifecycle -------------------------------------------------------------------------------

    def delete_session(self) -> bool:
        """Delete every variable and close this context; watchers get a session_deleted event."""
        self._store.check_readable()
        self._store.retire(close=True, deleted=True)
        return True

    def close(self) -> None:
        self._store.retire(close=True)

    def __enter__(self) -> LocalSessionContext:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalSessionContext(session_id={self.session_id!r})"
