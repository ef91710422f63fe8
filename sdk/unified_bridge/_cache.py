"""The near cache of one session context: coherent through the session's watch stream.

Reads (:meth:`NearCache.lookup`) take no lock: one dict lookup and one monotonic-clock comparison
(``time.monotonic`` is a vDSO call on Linux, not a syscall). Everything that *changes* the cache takes
a small lock, so that "is this fill still allowed?" and "insert" happen as one step with respect to
invalidations.

The in-flight race: a reader calls :meth:`begin_read` *before* its RPC and passes
the token to :meth:`fill` with the version the server returned. The fill is dropped when, since the
token was taken, the stream was lost or restarted (a *floor* epoch), or an invalidation that no version
explains touched one of its keys (deletes, writes of unknown outcome: *stamps*), or the stream has
announced a newer version of the variable than the one read (*versions*). So a value fetched before an
invalidation arrived never lands in the cache after it -- except a value that the invalidation itself
announced (same or newer version), which is not stale.

Coherence comes from the watch stream; the TTL is only a backstop. The cache serves nothing until the
stream is caught up (:meth:`start_serving`) and is emptied whenever the stream is lost.

Several values at one revision (:meth:`NearCache.snapshot`): every entry knows the session revision
its value is known to hold at (``as_of``: the event that brought it, the write that made it, or the
atomic read that fetched it). Entries with ``as_of`` at or below the revision the stream has applied
(``stream_revision``) all show the session at ``stream_revision``: any change in between would have
reached them. The changes of one event (or of one atomic batch written through) are applied as one
*batch*, and a snapshot that overlaps a batch is not taken. Anything else (a miss, an entry fetched
ahead of the stream, an entry of unknown age) and the caller reads all the values at once instead.
"""

from __future__ import annotations

import copy
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic as _monotonic
from typing import Any, Final

__all__ = ["MISS", "CacheStats", "NearCache"]


class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


#: What :meth:`NearCache.lookup` returns when it has nothing fresh (None is a valid value elsewhere).
MISS: Final[Any] = _Miss()

# Beyond this many remembered invalidation stamps, forget them all and move the floor instead:
# reads in flight at that moment lose their fill, nothing worse.
_MAX_STAMPS = 10_000

_IMMUTABLE = (int, float, str, bool, bytes, type(None))

#: ``as_of`` of a value whose revision is not known (a single read): never part of a snapshot.
UNKNOWN_REVISION: Final = sys.maxsize


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one context's cache (approximate under heavy thread contention: counted lock-free)."""

    hits: int
    misses: int
    invalidations: int
    size: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "invalidations": self.invalidations,
            "size": self.size,
        }


@dataclass(slots=True)
class _Entry:
    value: Any
    version: int
    var_id: str
    name: str
    expires_at: float
    mutable: bool
    as_of: int = UNKNOWN_REVISION


def _covers(entry: _Entry, name: str, version: int) -> bool:
    """Does ``entry`` already hold ``version`` (or newer) of the variable now called ``name``?"""
    return entry.version >= version and entry.name == name


class NearCache:
    """Values by variable name *and* id, with a reverse index id -> keys."""

    def __init__(self, ttl: float) -> None:
        self._entries: dict[str, _Entry] = {}
        self._keys_by_id: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._epoch = 0
        self._floor = 0  # fills with an older token are refused (clear, stamp overflow)
        # key -> epoch of its last invalidation that no version explains (deletes, unknown outcomes)
        self._stamps: dict[str, int] = {}
        self._versions: dict[str, int] = {}  # id -> highest version announced by the stream
        self._serving = False
        # Snapshots: the revision the stream has applied, batches being applied, and a generation
        # that every batch start and end bumps (a snapshot that saw it move is not taken).
        self.stream_revision = 0
        self._open_batches = 0
        self._generation = 0
        self.ttl = ttl
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    # --- the hot path ----------------------------------------------------------------------------

    @property
    def entries(self) -> dict[str, _Entry]:
        """The entries themselves, for a context's inlined read (the dict is never replaced)."""
        return self._entries

    def lookup(self, key: str) -> Any:
        """The cached value of ``key`` (a name or an id), or :data:`MISS`."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > _monotonic():
            self.hits += 1
            return copy.deepcopy(entry.value) if entry.mutable else entry.value
        self.misses += 1
        return MISS

    def peek(self, key: str) -> tuple[Any, int] | None:
        """(value, version) of a fresh entry, without touching the stats."""
        entry = self._entries.get(key)
        if entry is None or entry.expires_at <= _monotonic():
            return None
        return (copy.deepcopy(entry.value) if entry.mutable else entry.value), entry.version

    def snapshot(self, keys: list[str]) -> dict[str, Any] | None:
        """``{key: value}`` for every key, all at one revision, or None when the cache cannot vouch
        for that (then read them all at once from the server)."""
        generation = self._generation
        if self._open_batches or not self._serving:
            return None
        now = _monotonic()
        settled = self.stream_revision
        found: dict[str, Any] = {}
        for key in keys:
            entry = self._entries.get(key)
            if entry is None or entry.expires_at <= now or entry.as_of > settled:
                return None
            found[key] = copy.deepcopy(entry.value) if entry.mutable else entry.value
        if self._generation != generation or self._open_batches:
            return None
        self.hits += len(keys)
        return found

    def begin_batch(self) -> None:
        """The changes that follow belong together (one event, one atomic write): snapshots wait."""
        with self._lock:
            self._open_batches += 1
            self._generation += 1

    def end_batch(self, stream_revision: int | None = None) -> None:
        """The batch is applied; with ``stream_revision``, the stream has applied everything up to it."""
        with self._lock:
            if stream_revision is not None and stream_revision > self.stream_revision:
                self.stream_revision = stream_revision
            self._open_batches -= 1
            self._generation += 1

    def __contains__(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.expires_at > _monotonic()

    # --- filling ---------------------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        return self._serving

    def begin_read(self) -> int:
        """A token to pass to :meth:`fill` once the read returns."""
        return self._epoch

    def _allowed(self, token: int, keys: tuple[str, ...], var_id: str, version: int) -> bool:
        """May a value of ``var_id`` at ``version``, read or written since ``token``, be cached?

        Not if the stream is down or was restarted since, nor if an invalidation that no version explains
        (a delete, a write of unknown outcome) touched one of its keys since, nor if the stream already
        announced a newer version. An invalidation for the very version we hold does not make it stale.
        """
        if not self._serving or token < self._floor:
            return False
        stamps = self._stamps
        return all(stamps.get(k, -1) <= token for k in keys) and self._versions.get(var_id, -1) <= version

    def _new_entry(
        self, var_id: str, name: str, version: int, value: Any, as_of: int = UNKNOWN_REVISION
    ) -> _Entry:
        mutable = not isinstance(value, _IMMUTABLE)
        return _Entry(value, version, var_id, name, _monotonic() + self.ttl, mutable, as_of)

    def _insert(self, entry: _Entry, extra_key: str | None) -> None:
        keys = self._keys_by_id.setdefault(entry.var_id, set())
        for key in (entry.var_id, entry.name, extra_key):
            if key is not None:
                self._entries[key] = entry
                keys.add(key)

    def fill(
        self,
        token: int,
        var_id: str,
        name: str,
        version: int,
        value: Any,
        requested: str | None = None,
        as_of: int = UNKNOWN_REVISION,
    ) -> bool:
        """Cache a value read from the server, unless an invalidation for it arrived since ``token``."""
        keys = (var_id, name) if requested is None else (var_id, name, requested)
        with self._lock:
            if not self._allowed(token, keys, var_id, version):
                return False
            current = self._entries.get(var_id)
            if current is not None and current.version > version:
                return False
            entry = self._new_entry(var_id, name, version, value, as_of)
            self._insert(entry, requested if requested not in (var_id, name) else None)
            return True

    def write_through(
        self, token: int, var_id: str, name: str, version: int, value: Any, as_of: int = UNKNOWN_REVISION
    ) -> None:
        """After this context's own write (read-your-writes): older values of the variable can no longer
        be cached, and the written one is, unless while the write was in flight an invalidation arrived
        that its version does not explain (a delete, a write of unknown outcome, a newer version)."""
        with self._lock:
            allowed = self._allowed(token, (var_id, name), var_id, version)
            self._note_version(var_id, version)
            self._forget_locked(var_id, name)
            if allowed:
                self._insert(self._new_entry(var_id, name, version, value, as_of), None)

    # --- invalidation ----------------------------------------------------------------------------

    def _note_version(self, var_id: str, version: int) -> None:
        if version > self._versions.get(var_id, -1):
            if len(self._versions) >= _MAX_STAMPS:
                self._reset_floor_locked()
            self._versions[var_id] = version

    def _reset_floor_locked(self) -> None:
        # Too much to remember: refuse every fill in flight instead (cheap, and still correct).
        self._epoch += 1
        self._floor = self._epoch
        self._stamps.clear()
        self._versions.clear()

    def _forget_locked(self, var_id: str, name: str) -> None:
        for key in self._keys_by_id.pop(var_id, ()):
            self._entries.pop(key, None)
        stale = self._entries.pop(name, None)
        if stale is not None and stale.var_id != var_id:
            self._stamp_locked(stale.var_id, stale.name)
            for key in self._keys_by_id.pop(stale.var_id, ()):
                self._entries.pop(key, None)

    def _stamp_locked(self, *keys: str) -> None:
        if len(self._stamps) >= _MAX_STAMPS:
            self._reset_floor_locked()
        self._epoch += 1
        for key in keys:
            self._stamps[key] = self._epoch
        for key in keys:
            for alias in self._keys_by_id.get(key, ()):
                self._stamps[alias] = self._epoch

    def invalidate(self, var_id: str, name: str) -> None:
        """Forget a variable (by id, by name and any other key it was cached under); reads in flight
        for it lose their fill, whatever version they return (a delete, a write of unknown outcome)."""
        with self._lock:
            self._stamp_locked(var_id, name)
            self._forget_locked(var_id, name)
            self.invalidations += 1

    def _covered_locked(self, var_id: str, name: str, version: int, as_of: int) -> bool:
        """Whether the entry of ``var_id`` already holds ``version`` (or newer); then the stream,
        which announced it at ``as_of``, vouches for it from there."""
        current = self._entries.get(var_id)
        if current is None or not _covers(current, name, version):
            return False
        self._note_version(var_id, version)
        if current.version == version and as_of < current.as_of:
            current.as_of = as_of
        return True

    def confirm(self, var_id: str, name: str, version: int, as_of: int) -> None:
        """The stream lists this context's own write of ``version`` at revision ``as_of`` without its
        value: an entry holding that version (the write's own) stays, an older one goes."""
        with self._lock:
            if self._covered_locked(var_id, name, version, as_of):
                return
            self._note_version(var_id, version)
            self._forget_locked(var_id, name)
            self.invalidations += 1

    def apply_change(
        self, var_id: str, name: str, version: int, decode: Callable[[], Any], as_of: int = UNKNOWN_REVISION
    ) -> None:
        """An update or registration from the watch stream: version ``version`` of ``var_id`` exists, so
        older values must not be served or filled; a cached entry is refreshed with the event's value.

        ``decode()`` returns that value. It is called only when an entry is refreshed in place: decoding
        is the costly part (a tensor takes milliseconds) and most events only invalidate. If it raises,
        the cache is left as it was and the error propagates (the caller then invalidates).
        """
        value: Any = MISS
        guess = self._entries.get(var_id)
        if self._serving and guess is not None and not _covers(guess, name, version):
            # Likely a refresh: decode before taking the lock, so fills and writes do not wait on it.
            value = decode()
        with self._lock:
            if self._covered_locked(var_id, name, version, as_of):
                return  # our own write (or a newer read) already put this version here
            current = self._entries.get(var_id)
            refresh = current is not None and self._serving
            if refresh and value is MISS:
                # Filled since the unlocked check (rare). Decoded before any change, in case it raises.
                value = decode()
            self._note_version(var_id, version)
            self._forget_locked(var_id, name)
            self.invalidations += 1
            if refresh:
                self._insert(self._new_entry(var_id, name, version, value, as_of), None)

    def clear(self) -> None:
        """Forget everything; reads in flight lose their fill."""
        with self._lock:
            self._clear_locked()

    def _clear_locked(self) -> None:
        self._epoch += 1
        self._floor = self._epoch
        self._stamps.clear()
        self._versions.clear()
        if self._entries:
            self.invalidations += 1
        self._entries.clear()
        self._keys_by_id.clear()

    def start_serving(self, stream_revision: int) -> None:
        """The watch stream is caught up at ``stream_revision``. Reads that began before now may have
        fetched values whose invalidation the stream will never send (it started after them), so their
        fills are refused."""
        with self._lock:
            self._epoch += 1
            self._floor = self._epoch
            self.stream_revision = stream_revision
            self._serving = True

    def restart_stream(self, stream_revision: int) -> None:
        """Events were lost (history gone, session deleted): everything is forgotten, and the stream
        goes on from ``stream_revision`` (which may be lower: a session deleted and created again)."""
        with self._lock:
            self._clear_locked()
            self.stream_revision = stream_revision

    def stop_serving(self) -> None:
        """The watch stream is gone: empty the cache and refuse fills until it is back."""
        with self._lock:
            self._serving = False
            self._clear_locked()

    def stats(self) -> CacheStats:
        size = len({id(e) for e in list(self._entries.values())})
        return CacheStats(self.hits, self.misses, self.invalidations, size)
