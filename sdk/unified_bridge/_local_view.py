"""What the sync and asyncio local session contexts share: a store, its fast read map, and the
parts of the bridged API that have nothing to wait on (properties, the absent cache, watch start)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from unified_bridge._local_store import LocalStore, WatchPosition
from unified_bridge._rules import SessionLimits
from unified_bridge._session import ttl_seconds

__all__ = ["LocalStoreView", "local_cache_stats", "watch_position"]

_View = TypeVar("_View", bound="LocalStoreView")


def local_cache_stats() -> dict[str, float]:
    """A local session has no cache: every read is served from the session itself."""
    return {"hits": 0, "misses": 0, "hit_rate": 0.0, "invalidations": 0, "size": 0}


def watch_position(current: int, names: Iterable[str] | None, from_revision: int | None) -> WatchPosition:
    """Where a watch of the local log starts: ``from_revision``, or the current revision."""
    return WatchPosition(
        current if from_revision is None else from_revision,
        None if names is None else frozenset(names),
    )


class LocalStoreView:
    """A context over one :class:`LocalStore`; subclasses add the sync or asyncio methods."""

    _store: LocalStore
    _fast: dict[str, Any]

    def __init__(
        self,
        session_id: str | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        self._bind(LocalStore(session_id, metadata=metadata, limits=limits))

    @classmethod
    def _over(cls: type[_View], store: LocalStore) -> _View:
        """A context over an existing store (the local-first context's local backend)."""
        view = cls.__new__(cls)
        view._bind(store)
        return view

    def _bind(self, store: LocalStore) -> None:
        self._store = store
        self._fast = store.fast  # bound once: the read path is a dict lookup

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

    def _watch_position(self, names: Iterable[str] | None, from_revision: int | None) -> WatchPosition:
        return watch_position(self.revision, names, from_revision)

    def _delete_now(self) -> bool:
        """Delete every variable and close; watchers get a session_deleted event."""
        self._store.check_readable()
        self._store.retire(close=True, deleted=True)
        return True

    # --- cache (a local session has none) --------------------------------------------------------

    def set_cache_ttl(self, ttl: timedelta | float) -> None:
        ttl_seconds(ttl)  # the same check as a bridged context; nothing to expire

    def clear_cache(self) -> None:
        return None

    def cache_stats(self) -> dict[str, float]:
        return local_cache_stats()
