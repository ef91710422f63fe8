"""``SessionContext``: the blocking session API. A thin shell: decisions live in ``_core``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from time import monotonic as _monotonic
from types import TracebackType
from typing import Any, TypeVar

import grpc

from unified_bridge._cache import MISS
from unified_bridge._calls import (
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUT,
    Flow,
    RetryPolicy,
    invoker,
    run_flow,
)
from unified_bridge._core import DEFAULT_CACHE_TTL, DEFAULT_UPDATE_ATTEMPTS, SessionCore, delete_session
from unified_bridge._models import ChangeEvent
from unified_bridge._proxy import BatchUpdater, VariableNamespace, VariableProxy
from unified_bridge._transport import SyncTransport
from unified_bridge._watch import MIN_OPEN_TIMEOUT, StreamBackoff, ThreadFollower, WatchCursor, iter_changes
from unified_bridge.errors import BridgeError, ValidationError
from unified_bridge.types import VariableType, validate_session_id

__all__ = ["SessionContext", "ttl_seconds"]

logger = logging.getLogger("unified_bridge")

T = TypeVar("T")


def ttl_seconds(ttl: timedelta | float) -> float:
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds < 0:
        raise ValidationError(f"Cache TTL must not be negative, got {seconds}")
    return seconds


def sync_transport_for(stub_or_channel: Any) -> SyncTransport:
    if isinstance(stub_or_channel, SyncTransport):
        return stub_or_channel
    if isinstance(stub_or_channel, grpc.Channel):
        return SyncTransport(channel=stub_or_channel)
    if hasattr(stub_or_channel, "GetVariable"):
        return SyncTransport(stub=stub_or_channel)
    raise TypeError(f"Expected a UnifiedBridgeStub or a grpc.Channel, got {type(stub_or_channel).__name__}")


class SessionContext:
    """A session's variables, with a near cache kept coherent by the session's change stream.

    >>> with connect("127.0.0.1:50051").session() as ctx:   # doctest: +SKIP
    ...     ctx["lr"] = 0.01             # registers a float
    ...     ctx.update("steps", lambda n: n + 1)

    ``SessionContext(stub_or_channel, session_id)`` also works; it creates the session if it does not
    exist and never closes the stub's channel. With ``cache=False`` every read goes to the server and
    no stream is followed.
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
        self._setup(sync_transport_for(stub_or_channel), session_id, cache_ttl, timeout, retry_policy)
        self._owns_transport = owns_transport
        self._run(self._core.create_session(ttl, metadata))
        if cache:
            self._start_follower(
                stream_backoff or StreamBackoff(open_timeout=max(timeout, MIN_OPEN_TIMEOUT)), wait=True
            )

    @classmethod
    def _attached(
        cls,
        transport: SyncTransport,
        session_id: str,
        revision: int,
        *,
        cache: bool,
        cache_ttl: timedelta | float,
        timeout: float,
        retry_policy: RetryPolicy,
    ) -> SessionContext:
        """A context on a session known to exist at ``revision`` (just imported): no call is made, so
        nothing can fail here; the cache serves once its stream has caught up."""
        ctx = cls.__new__(cls)
        ctx._setup(transport, session_id, cache_ttl, timeout, retry_policy)
        ctx._owns_transport = False
        ctx._core.note_revision(revision)
        if cache:
            ctx._start_follower(StreamBackoff(open_timeout=max(timeout, MIN_OPEN_TIMEOUT)), wait=False)
        return ctx

    def _setup(
        self,
        transport: SyncTransport,
        session_id: str | None,
        cache_ttl: timedelta | float,
        timeout: float,
        retry_policy: RetryPolicy,
    ) -> None:
        self._transport = transport
        self._timeout = timeout
        self._invoke = invoker(transport.stub, timeout, retry_policy)
        self._core = SessionCore(session_id or "", cache_ttl=ttl_seconds(cache_ttl))
        self._cache = self._core.cache
        self._entries = self._cache.entries  # `ctx[name]` reads these inline: the hot path
        self._lookup = self._cache.lookup
        self._closed = False
        self._update_locks: dict[str, threading.Lock] = {}
        self._follower: ThreadFollower | None = None
        self.v = VariableNamespace(self)

    # --- plumbing --------------------------------------------------------------------------------

    def _run(self, flow: Flow[T]) -> T:
        if self._closed:
            raise BridgeError("This session context is closed")
        return run_flow(flow, self._invoke)

    def _start_follower(self, backoff: StreamBackoff, *, wait: bool) -> None:
        self._follower = ThreadFollower(self._core, self._transport, backoff)
        self._follower.start()
        if wait and not self._follower.wait_ready(self._timeout):
            logger.warning(
                "session %s: watch stream not caught up yet; reads bypass the cache", self.session_id
            )

    @property
    def session_id(self) -> str:
        return self._core.session_id

    @property
    def revision(self) -> int:
        """The highest session revision this context has seen (events and its own writes)."""
        return self._core.revision

    @property
    def watch_target(self) -> str | None:
        """The frontend the cache's watch stream goes to (None without a cache)."""
        return None if self._follower is None else self._follower.target

    def wait_for_cache(self, timeout: float | None = None) -> bool:
        """Block until the watch stream is caught up and the cache serves (False on timeout)."""
        return self._follower is not None and self._follower.wait_ready(timeout)

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
        """Register a variable and return its id. Registering the same definition again returns the
        existing id; another definition under that name raises AlreadyExistsError."""
        info, _ = self._run(self._core.register(name, type, value, constraints, metadata, description))
        return info.id

    def get_variable(self, name_or_id: str) -> Any:
        """The variable's value, from the cache when it is fresh."""
        value = self._lookup(name_or_id)
        if value is not MISS:
            return value
        return self._run(self._core.get(name_or_id))

    def get_variable_info(self, name_or_id: str) -> dict[str, Any]:
        """Everything about a variable, read from the server (see :meth:`list_variables`)."""
        return self._run(self._core.fetch(name_or_id)).as_dict()

    def get_variables(self, names: Iterable[str]) -> dict[str, Any]:
        """``{name: value}``; raises VariableNotFoundError if any is missing."""
        return self._run(self._core.get_many(names))

    def update_variable(self, name_or_id: str, value: Any, expected_version: int | None = None) -> int:
        """Set a value (checked locally first); returns the new version. With ``expected_version`` the
        write is a compare-and-set: VersionConflictError when the version differs."""
        return self._run(self._core.set(name_or_id, value, expected_version))

    def update_variables(self, updates: Mapping[str, Any], atomic: bool = False) -> dict[str, bool | str]:
        """Set many values in one call. Non-atomic: ``{name: True | "error message"}``. Atomic: all or
        nothing, raising on the first problem."""
        return self._run(self._core.set_many(updates, atomic))

    def update(
        self, name_or_id: str, fn: Callable[[Any], Any], *, max_attempts: int = DEFAULT_UPDATE_ATTEMPTS
    ) -> Any:
        """Functional update: ``fn(current)`` written with compare-and-set, retried on conflict, so
        concurrent updates are never lost. Returns the value written."""
        # Threads of one context updating one variable queue here instead of failing each other's
        # compare-and-set: one round trip per update instead of a storm of retries. Other processes are
        # still serialized by the compare-and-set itself.
        with self._update_locks.setdefault(name_or_id, threading.Lock()):
            return self._run(self._core.update(name_or_id, fn, max_attempts))

    def delete_variable(self, name_or_id: str) -> None:
        self._run(self._core.delete(name_or_id))

    def list_variables(self, pattern: str | None = None) -> list[dict[str, Any]]:
        """Variables sorted by name, optionally filtered by a glob on names: dicts with id, name, type,
        value, constraints, metadata, description, version, created_at, updated_at."""
        return self._run(self._core.list(pattern))

    def watch(
        self, names: Iterable[str] | None = None, *, from_revision: int | None = None
    ) -> Iterator[ChangeEvent]:
        """Change events after ``from_revision`` (default: the last revision this context has seen),
        for all variables or only ``names``; reconnects by itself. Close the iterator to stop."""
        cursor = WatchCursor(
            self.session_id,
            self._core.revision if from_revision is None else from_revision,
            len(self._transport.watch_target_names),
            StreamBackoff(open_timeout=max(self._timeout, MIN_OPEN_TIMEOUT)),
        )
        return iter_changes(self._transport.watch_stub, cursor, None if names is None else frozenset(names))

    # --- cache -----------------------------------------------------------------------------------

    def set_cache_ttl(self, ttl: timedelta | float) -> None:
        """Set the cache TTL (a backstop: coherence comes from the watch stream); clears the cache."""
        self._core.cache.ttl = ttl_seconds(ttl)
        self._core.cache.clear()

    def clear_cache(self) -> None:
        self._core.cache.clear()

    def cache_stats(self) -> dict[str, float]:
        """``hits``, ``misses``, ``hit_rate``, ``invalidations`` and ``size`` of the cache."""
        return self._core.cache.stats().as_dict()

    # --- Python idioms ---------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        # NearCache.lookup written out for an immutable value: a call less on the hottest path.
        entry = self._entries.get(name)
        if entry is not None and not entry.mutable and entry.expires_at > _monotonic():
            self._cache.hits += 1
            return entry.value
        value = self._lookup(name)
        if value is not MISS:
            return value
        return self._run(self._core.get(name))

    def __setitem__(self, name: str, value: Any) -> None:
        self._run(self._core.set_item(name, value))

    def __delitem__(self, name: str) -> None:
        self.delete_variable(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._run(self._core.contains(name))

    def variable(self, name: str) -> VariableProxy:
        return VariableProxy(self, name)

    @contextmanager
    def batch_updates(self, atomic: bool = False) -> Iterator[BatchUpdater]:
        """Collect writes and send them in one call when the block ends; nothing if it raises.

        >>> with ctx.batch_updates() as batch:   # doctest: +SKIP
        ...     batch["a"] = 1
        ...     batch["b"] = 2
        """
        batch = BatchUpdater(self.get_variable)
        yield batch
        if batch.pending:
            batch.results = self.update_variables(batch.pending, atomic=atomic)

    # --- lifecycle -------------------------------------------------------------------------------

    def delete_session(self) -> bool:
        """Delete the session on the server (all its variables) and close this context."""
        deleted = self._run(delete_session(self.session_id))
        self.close()
        return deleted

    def close(self) -> None:
        """Stop the watch follower, drop the cache and close the channels this context owns."""
        if self._closed:
            return
        self._closed = True
        if self._follower is not None:
            self._follower.stop()
        self._core.cache.stop_serving()
        if self._owns_transport:
            self._transport.close()

    def __enter__(self) -> SessionContext:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SessionContext(session_id={self.session_id!r})"
