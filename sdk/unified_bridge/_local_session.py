"""``LocalSessionContext``: a session held in process, with the API of :class:`SessionContext`.

A thin shell over :class:`~unified_bridge._local_store.LocalStore`, where every rule lives. Nothing
here talks to a frontend: reads are dict lookups and writes validate and bump two integers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from unified_bridge._core import DEFAULT_UPDATE_ATTEMPTS
from unified_bridge._local_store import LocalStore, WatchPosition
from unified_bridge._local_view import LocalStoreView
from unified_bridge._models import ChangeEvent
from unified_bridge._proxy import BatchUpdater, VariableNamespace, VariableProxy
from unified_bridge.types import VariableType

__all__ = ["LocalSessionContext", "iter_local_changes"]


def iter_local_changes(store: LocalStore, position: WatchPosition) -> Iterator[ChangeEvent]:
    """Events after ``position`` from the store's log, then live, until the store retires."""
    wakeup = position.wakeup
    store.listen(wakeup.set)
    try:
        while True:
            wakeup.clear()
            events, finished = store.pending_events(position)
            yield from events
            if finished:
                return
            wakeup.wait()
    finally:
        store.unlisten(wakeup.set)


class LocalSessionContext(LocalStoreView):
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

    def _bind(self, store: LocalStore) -> None:
        super()._bind(store)
        self.v = VariableNamespace(self)

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
        return iter_local_changes(self._store, self._watch_position(names, from_revision))

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
        return self._delete_now()

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
