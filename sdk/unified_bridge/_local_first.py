"""``LocalFirstContext``: variables in process until they must be shared, then on the bridge.

The context is a shell over one backend at a time: a :class:`LocalSessionContext` at first, a
:class:`SessionContext` once :meth:`LocalFirstContext.ensure_bridged` has moved the session (see
:mod:`unified_bridge._switch` for what the move does and guarantees). Readers never wait; writers
share a gate that the switch holds alone, so no write lands in the local store after its snapshot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from threading import get_ident
from types import TracebackType
from typing import Any

from unified_bridge._client import BridgeClient, connect
from unified_bridge._core import DEFAULT_CACHE_TTL, DEFAULT_UPDATE_ATTEMPTS
from unified_bridge._local_first_base import LocalFirstBase
from unified_bridge._local_session import LocalSessionContext, iter_local_changes
from unified_bridge._local_store import SESSION_DELETED, WatchPosition
from unified_bridge._models import ChangeEvent
from unified_bridge._proxy import BatchUpdater, VariableNamespace, VariableProxy
from unified_bridge._rules import SessionLimits
from unified_bridge._session import SessionContext
from unified_bridge._switch import needs_bridge, next_import
from unified_bridge.errors import BridgeError
from unified_bridge.types import VariableType

__all__ = ["Bridge", "LocalFirstContext", "local_first"]

#: Where a local-first context may move: a client, or targets to connect to (``"host:port"``).
Bridge = BridgeClient | str | Sequence[str]


class WriteGate:
    """Writers share it, a switch holds it alone, readers never touch it.

    Writers take no lock while no switch is pending: each thread counts its own writes in ``_depth``
    (only that thread touches its key, so no update is lost), then looks at ``_switching``; a switch
    sets ``_switching``, then waits for every count to reach zero. Each side writes before it reads
    what the other wrote, so a writer either sees the switch coming and steps back, or the switch
    sees the writer and waits for it. A thread already writing may write again (an ``update``
    function that writes) without waiting for a switch that is waiting for it.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._changed = threading.Condition(self._mutex)
        self._depth: dict[int, int] = {}
        self._switching = False

    def enter(self) -> None:
        me = get_ident()
        depth = self._depth.get(me, 0)
        self._depth[me] = depth + 1
        if depth == 0 and self._switching:
            self._step_back(me)

    def _step_back(self, me: int) -> None:
        with self._mutex:
            del self._depth[me]
            self._changed.notify_all()
            while self._switching:
                self._changed.wait()
            self._depth[me] = 1

    def leave(self) -> None:
        me = get_ident()
        depth = self._depth[me] - 1
        if depth:
            self._depth[me] = depth
            return
        del self._depth[me]
        if self._switching:
            with self._mutex:
                self._changed.notify_all()

    def writing_here(self) -> bool:
        return get_ident() in self._depth

    @contextmanager
    def exclusive(self, timeout: float | None) -> Iterator[None]:
        """Held alone: every writer has left and new ones wait. BridgeError if writers are still
        busy after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mutex:
            while self._switching:
                self._changed.wait()
            self._switching = True
            while self._depth:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._switching = False
                    self._changed.notify_all()
                    raise BridgeError(f"writers were still busy after {timeout} s; the session stays local")
                self._changed.wait(remaining)
        try:
            yield
        finally:
            with self._mutex:
                self._switching = False
                self._changed.notify_all()


class LocalFirstContext(LocalFirstBase[BridgeClient]):
    """A session that starts in process, at dictionary speed, and moves to the bridge when it must be
    shared, keeping every value, id, version, constraint and piece of metadata.

    >>> with LocalFirstContext(bridge="127.0.0.1:50051") as ctx:     # doctest: +SKIP
    ...     ctx["temperature"] = 0.7          # local: a dict write
    ...     ctx.register_program("worker", {"requires_bridge": True})   # moves to the bridge
    ...     ctx.backend.kind
    'bridged'

    It has every method of :class:`~unified_bridge.SessionContext`. If a switch fails (bridge
    unreachable, credentials refused, a limit, the session already on the bridge), the context stays
    local with every value intact, counts the failure in :attr:`backend`, and ``ensure_bridged`` raises.
    """

    def __init__(
        self,
        session_id: str | None = None,
        *,
        bridge: Bridge | None = None,
        start_bridged: bool = False,
        metadata: Mapping[str, str] | None = None,
        limits: SessionLimits | None = None,
        ttl: float | None = None,
        cache: bool = True,
        cache_ttl: timedelta | float = DEFAULT_CACHE_TTL,
    ) -> None:
        self._init_state(session_id, bridge, metadata, limits, ttl, cache, cache_ttl)
        self._active: LocalSessionContext | SessionContext = LocalSessionContext._over(self._store)
        # ctx[name] = value, bound once per backend: the local store's own, skipping a layer.
        self._set_item: Callable[[str, Any], None] = self._store.set_item
        self._gate = WriteGate()
        self.v = VariableNamespace(self)
        if start_bridged:
            client = self._client_for(None)
            self._use(
                client.session(
                    self._store.session_id, ttl=ttl, metadata=metadata, cache=cache, cache_ttl=cache_ttl
                )
            )
            self._log.kind = "bridged"
            self._store.retire(close=False)

    # --- the backend -----------------------------------------------------------------------------

    _client_class = BridgeClient

    def _connect(self, target: Any) -> BridgeClient:
        return connect(target)

    def _client_for(self, bridge: Bridge | None) -> BridgeClient:
        client, replaced = self._choose_client(bridge)
        if replaced is not None:
            replaced.close()
        return client

    def ensure_bridged(self, bridge: Bridge | None = None, timeout: float | None = None) -> None:
        """Move the session to the bridge (a no-op once there).

        Writers wait while the move runs; readers do not. On failure the context stays local with every
        value, the failure is counted in :attr:`backend`, and the error is raised: AlreadyExistsError
        (the session exists on the bridge with other content), BridgeUnavailableError, ...
        """
        if self._log.kind == "bridged":
            return
        if self._gate.writing_here():
            raise BridgeError("ensure_bridged cannot run inside a write to the same context")
        client = self._client_for(bridge)
        started = time.perf_counter()
        try:
            with self._gate.exclusive(timeout):
                if self.is_bridged:
                    return  # another thread moved it while we waited
                self._use(self._move(client, timeout))
                self._log.succeeded(started)
                self._store.retire(close=False)
        except BridgeError as exc:
            self._log.failed(started, exc)
            raise
        except Exception as exc:
            self._log.failed(started, BridgeError(f"{type(exc).__name__}: {exc}"))
            raise

    def _use(self, bridged: SessionContext) -> None:
        self._active = bridged
        self._set_item = bridged.__setitem__

    def _move(self, client: BridgeClient, timeout: float | None) -> SessionContext:
        self._pending = pending = next_import(self._store.snapshot(), self._pending, self._ttl)
        result = client._import(pending.request, timeout)
        self._pending = None
        return client._attach(
            result.session_id, result.revision, cache=self._cache, cache_ttl=self._cache_ttl
        )

    def register_program(self, name: str, spec: Any, requires_bridge: bool | None = None) -> None:
        """Note a program that uses this session; if it must share the variables (``requires_bridge``,
        or the spec's ``requires_bridge``, ``shared`` or ``requires_python``), move to the bridge
        first. A program whose move fails is not registered."""
        if needs_bridge(spec, requires_bridge):
            self.ensure_bridged()
        self._programs[name] = spec

    # --- plumbing --------------------------------------------------------------------------------

    def _write(self, operation: Callable[[LocalSessionContext | SessionContext], Any]) -> Any:
        gate = self._gate
        gate.enter()
        try:
            return operation(self._active)
        finally:
            gate.leave()

    @property
    def revision(self) -> int:
        return self._active.revision

    @property
    def watch_target(self) -> str | None:
        return self._active.watch_target

    def wait_for_cache(self, timeout: float | None = None) -> bool:
        return self._active.wait_for_cache(timeout)

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
        return self._write(  # type: ignore[no-any-return]
            lambda active: active.register_variable(name, type, value, constraints, metadata, description)
        )

    def get_variable(self, name_or_id: str) -> Any:
        return self._active.get_variable(name_or_id)

    def get_variable_info(self, name_or_id: str) -> dict[str, Any]:
        return self._active.get_variable_info(name_or_id)

    def get_variables(self, names: Iterable[str]) -> dict[str, Any]:
        return self._active.get_variables(names)

    def update_variable(self, name_or_id: str, value: Any, expected_version: int | None = None) -> int:
        gate = self._gate
        gate.enter()
        try:
            return self._active.update_variable(name_or_id, value, expected_version)
        finally:
            gate.leave()

    def update_variables(self, updates: Mapping[str, Any], atomic: bool = False) -> dict[str, bool | str]:
        return self._write(lambda active: active.update_variables(updates, atomic))  # type: ignore[no-any-return]

    def update(
        self, name_or_id: str, fn: Callable[[Any], Any], *, max_attempts: int = DEFAULT_UPDATE_ATTEMPTS
    ) -> Any:
        return self._write(lambda active: active.update(name_or_id, fn, max_attempts=max_attempts))

    def delete_variable(self, name_or_id: str) -> None:
        self._write(lambda active: active.delete_variable(name_or_id))

    def list_variables(self, pattern: str | None = None) -> list[dict[str, Any]]:
        return self._active.list_variables(pattern)

    def watch(
        self, names: Iterable[str] | None = None, *, from_revision: int | None = None
    ) -> Iterator[ChangeEvent]:
        """Change events after ``from_revision`` (default: the current revision); an iterator opened
        before a switch goes on across it without a gap (the move itself is one "imported" event)."""
        start = self.revision if from_revision is None else from_revision
        return self._watch(None if names is None else frozenset(names), start)

    def _watch(self, names: frozenset[str] | None, revision: int) -> Iterator[ChangeEvent]:
        store = self._store
        if not store.closed and (self._log.kind == "local" or revision < store.revision):
            position = WatchPosition(revision, names)
            for event in iter_local_changes(store, position):
                yield event
                if event.kind == SESSION_DELETED:
                    return
            if self._log.kind != "bridged":
                return  # closed while local
            revision = position.revision
        yield from self._active.watch(names, from_revision=revision)

    # --- cache -----------------------------------------------------------------------------------

    def set_cache_ttl(self, ttl: timedelta | float) -> None:
        self._active.set_cache_ttl(ttl)

    def clear_cache(self) -> None:
        self._active.clear_cache()

    def cache_stats(self) -> dict[str, float]:
        return self._active.cache_stats()

    # --- Python idioms ---------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self._active[name]

    def __setitem__(self, name: str, value: Any) -> None:
        gate = self._gate
        gate.enter()
        try:
            self._set_item(name, value)
        finally:
            gate.leave()

    def __delitem__(self, name: str) -> None:
        self.delete_variable(name)

    def __contains__(self, name: object) -> bool:
        return name in self._active

    def variable(self, name: str) -> VariableProxy:
        return VariableProxy(self, name)

    @contextmanager
    def batch_updates(self, atomic: bool = False) -> Iterator[BatchUpdater]:
        """Collect writes and apply them in one call when the block ends; nothing if it raises."""
        batch = BatchUpdater(self.get_variable)
        yield batch
        if batch.pending:
            batch.results = self.update_variables(batch.pending, atomic=atomic)

    # --- lifecycle -------------------------------------------------------------------------------

    def delete_session(self) -> bool:
        """Delete the session wherever it is now, and close this context."""
        deleted: bool = self._write(lambda active: active.delete_session())
        self.close()
        return deleted

    def close(self) -> None:
        self._active.close()
        self._store.retire(close=True)
        if (owned := self._owned_client()) is not None:
            owned.close()

    def __enter__(self) -> LocalFirstContext:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalFirstContext(session_id={self.session_id!r}, backend={self._log.kind!r})"


def local_first(
    session_id: str | None = None,
    *,
    bridge: Bridge | None = None,
    start_bridged: bool = False,
    metadata: Mapping[str, str] | None = None,
    limits: SessionLimits | None = None,
    ttl: float | None = None,
    cache: bool = True,
    cache_ttl: timedelta | float = DEFAULT_CACHE_TTL,
) -> LocalFirstContext:
    """A :class:`LocalFirstContext`: local now, on ``bridge`` once :meth:`~LocalFirstContext.ensure_bridged`
    (or a program that needs sharing) moves it."""
    return LocalFirstContext(
        session_id,
        bridge=bridge,
        start_bridged=start_bridged,
        metadata=metadata,
        limits=limits,
        ttl=ttl,
        cache=cache,
        cache_ttl=cache_ttl,
    )
