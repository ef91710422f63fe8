"""A session's change events for one watcher: replay from the log, then live, never a gap.

The order matters: subscribe first, then read where the session stands, then replay the log up to
there, then follow the live channel. Live events at or below the last revision sent are dropped
(they were replayed); a live event beyond the next expected revision means something was missed,
and the log fills the gap. When the log no longer reaches back far enough, the watcher gets a
HISTORY_GONE event and the stream goes on from the oldest revision the log still holds.

After a failover a revision number may name another write than the one the watcher was sent: the
old master published it, and the new master, which never got it, reached that number with another
write. The watcher remembers the last change it sent; when the same revision arrives with other
content, or the log holds other content there when live delivery was interrupted, the watcher gets
HISTORY_GONE (its view held a write that is gone) and the log again from the start.

A watcher with a writer token is not sent the live events of its own writes (those whose writer is
that token): it made them and holds their values. It still learns of each, in order, without a
message of its own: the next thing sent to it carries them (`OwnWrites`), or, when nothing else comes
within the flush delay, they go alone. Replayed events are always sent whole.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge_server.events import ChangeEvent, EventKind, HeldWrite, LiveEvent, decode_event
from bridge_server.fanout import END_OF_STREAM, OWN_WRITES_DUE, RESYNC, EventHub, Subscription
from bridge_server.store import VariableStore
from unified_bridge._backoff import backoff_delay
from unified_bridge.errors import SessionNotFoundError

__all__ = ["OwnWrites", "Sent", "watch_session"]

# Replay reads the log in pages sized by bytes, not only by count: a page holds about
# _LOG_PAGE_BYTES of events, judged by the events of the page before (the first page is small, as
# an event may be as large as half a message).
_LOG_PAGE_BYTES = 4 * 1024 * 1024
_LOG_PAGE_MAX = 1000
_LOG_PAGE_FIRST = 16
_MAX_RETRY_DELAY = 1.0
_MARKERS = frozenset({EventKind.CAUGHT_UP, EventKind.HISTORY_GONE})


@dataclasses.dataclass(frozen=True, slots=True)
class OwnWrites:
    """The watcher's own writes held back (in order), and what they ride on (None: they go alone)."""

    writes: tuple[HeldWrite, ...]
    then: ChangeEvent | LiveEvent | None


#: What a watch stream sends: a replayed event or marker, a live event, or own writes.
Sent = ChangeEvent | LiveEvent | OwnWrites


class _HeldOwnWrites:
    """The watcher's own writes held back: ids and versions only, counted against the watchers'
    queue budgets as queued events are, and let go at ``limit`` bytes (they must fit in a message)."""

    def __init__(self, subscription: Subscription, limit: int) -> None:
        self._subscription = subscription
        self._limit = limit
        self._writes: list[HeldWrite] = []

    def __bool__(self) -> bool:
        return bool(self._writes)

    def hold(self, event: ChangeEvent) -> bool:
        """Hold ``event`` back; True when what is held must go now."""
        write = HeldWrite.of(event)
        self._writes.append(write)
        return not self._subscription.hold(write.size, self._limit)

    def take(self) -> OwnWrites:
        """What is held, to go alone; nothing is held after."""
        return self.attach(None)

    def attach(self, item: ChangeEvent | LiveEvent | None) -> OwnWrites:
        writes = tuple(self._writes)
        self._writes.clear()
        self._subscription.unhold()
        return OwnWrites(writes, item)


def _with_own(own: _HeldOwnWrites, item: ChangeEvent | LiveEvent) -> Sent:
    """``item``, carrying the own writes held back before it (which are then no longer held)."""
    return own.attach(item) if own else item


async def watch_session(
    store: VariableStore,
    hub: EventHub,
    session_id: str,
    from_revision: int,
    from_now: bool = False,
    from_revision_time_ms: int | None = None,
    writer: str = "",
    own_writes_max_bytes: int = 1 << 20,
) -> AsyncIterator[Sent]:
    """The session's events from ``from_revision`` on. Live ones come as the `LiveEvent` every
    watcher of the session on this frontend shares (send its `wire` bytes once made); the rest,
    replayed from the log or markers, as `ChangeEvent`s; with ``writer``, the live events of the
    watcher's own writes as `OwnWrites`."""
    session_id = store.checked_session_id(session_id)
    subscription = await hub.subscribe(store.keys(session_id).channel)
    try:
        current = await store.watch_position(session_id)
        if current is None:
            raise SessionNotFoundError.for_id(session_id)
        last = current if from_now else from_revision
        if last > current or (
            not from_now
            and from_revision_time_ms is not None
            and await _logged_time_differs(store, session_id, last, from_revision_time_ms)
        ):
            # The session was deleted and created again since the watcher's last event, or a
            # failover gave the watcher's last revision to another write.
            yield _marker(EventKind.HISTORY_GONE, 0)
            last = 0
        sent: ChangeEvent | None = None  # the last change sent (markers are not changes)
        async for event in _from_log(store, session_id, last, current):
            last, sent = event.revision, _change_or(event, sent)
            yield event
        yield _marker(EventKind.CAUGHT_UP, last)

        holds_own = bool(writer) and subscription.own_writes_flush > 0
        own = _HeldOwnWrites(subscription, own_writes_max_bytes)  # not yet sent
        while True:
            if own and subscription.queue.empty():
                subscription.flush_soon()
            item = await subscription.get()
            if item == END_OF_STREAM:
                if own:
                    yield own.take()
                return
            if item == OWN_WRITES_DUE:
                if own:
                    yield own.take()
                continue
            if not isinstance(item, LiveEvent):  # RESYNC or IDLE
                # Live delivery may have missed something, or it is simply quiet: check the log.
                # Every watcher of a quiet session is told at once, and they share one read.
                interrupted = item == RESYNC
                current = await _position_when_reachable(store, session_id, shared=not interrupted)
                if not interrupted and (current is None or current < last):
                    # A shared read may have reached Redis before what this watcher already holds:
                    # only its own read may say the session is gone or went back.
                    current = await _position_when_reachable(store, session_id, shared=False)
                if current is None:
                    yield _with_own(own, _marker(EventKind.SESSION_DELETED, last + 1))
                    return
                if current < last or (interrupted and await _log_differs(store, session_id, sent)):
                    yield _with_own(own, _marker(EventKind.HISTORY_GONE, 0))
                    last, sent = 0, None
                async for event in _from_log(store, session_id, last, current):
                    last, sent = event.revision, _change_or(event, sent)
                    yield _with_own(own, event)
                continue
            event = item.event
            if event.revision == last and sent is not None and sent.revision == last and event != sent:
                # The revision the watcher holds now names another write: replay everything.
                yield _with_own(own, _marker(EventKind.HISTORY_GONE, 0))
                last, sent = 0, None
                async for replayed in _from_log(store, session_id, 0, event.revision):
                    last, sent = replayed.revision, _change_or(replayed, sent)
                    yield _with_own(own, replayed)
                continue
            if event.revision <= last:
                continue
            if event.revision > last + 1:
                async for missed in _from_log(store, session_id, last, event.revision - 1):
                    last, sent = missed.revision, _change_or(missed, sent)
                    yield _with_own(own, missed)
            if event.revision > last:
                last, sent = event.revision, event
                if holds_own and event.writer == writer and event.kind is EventKind.UPDATED:
                    # Made by the watcher itself: listed later, not sent now (unless too much is held).
                    if own.hold(event):
                        yield own.take()
                    continue
                yield _with_own(own, item)
            if event.kind is EventKind.SESSION_DELETED:
                return
    finally:
        await hub.unsubscribe(subscription)


def _change_or(event: ChangeEvent, sent: ChangeEvent | None) -> ChangeEvent | None:
    """``event`` if it is a change, else what was sent before it (markers are not in the log)."""
    return event if event.kind not in _MARKERS else sent


async def _logged_at(store: VariableStore, session_id: str, revision: int) -> ChangeEvent | None:
    """The change the log holds at ``revision``; None when it holds none there (trimmed away, or
    never written: the replay tells those apart and says HISTORY_GONE where it must)."""
    if revision <= 0:
        return None
    raws = await store.read_log(session_id, revision - 1, 1)
    logged = decode_event(raws[0]) if raws else None
    return logged if logged is not None and logged.revision == revision else None


async def _logged_time_differs(store: VariableStore, session_id: str, revision: int, time_ms: int) -> bool:
    """Whether the log holds a change at ``revision`` made at another time than the watcher's."""
    logged = await _logged_at(store, session_id, revision)
    return logged is not None and logged.time_ms != time_ms


async def _log_differs(store: VariableStore, session_id: str, sent: ChangeEvent | None) -> bool:
    """Whether the log holds another change than ``sent`` at its revision."""
    logged = None if sent is None else await _logged_at(store, session_id, sent.revision)
    return logged is not None and logged != sent


async def _position_when_reachable(store: VariableStore, session_id: str, shared: bool) -> int | None:
    """Where the session stands, waiting out a Redis outage instead of ending the stream; ``shared``:
    one read for every watcher of the session asking at the same time."""
    failures = 0
    while True:
        try:
            if shared:
                return await store.shared_watch_position(session_id)
            return await store.watch_position(session_id)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            failures += 1
            await asyncio.sleep(backoff_delay(failures, 0.05, _MAX_RETRY_DELAY))


async def _from_log(
    store: VariableStore, session_id: str, after: int, until: int
) -> AsyncIterator[ChangeEvent]:
    """Events after `after` up to at least `until` from the change log, or HISTORY_GONE first."""
    page = _LOG_PAGE_FIRST
    while after < until:
        raws = await store.read_log(session_id, after, page)
        if raws:
            average = sum(len(raw) for raw in raws) / len(raws)
            page = max(1, min(_LOG_PAGE_MAX, int(_LOG_PAGE_BYTES / max(average, 1.0))))
        events = [decode_event(raw) for raw in raws]
        if not events or events[0].revision != after + 1:
            # Trimmed away (or the session vanished): say so, then go on from what is left.
            resume = events[0].revision - 1 if events else until
            yield _marker(EventKind.HISTORY_GONE, resume)
            after = resume
            if not events:
                return
        for event in events:
            yield event
            after = event.revision


def _marker(kind: EventKind, revision: int) -> ChangeEvent:
    return ChangeEvent(revision=revision, kind=kind, time_ms=0)
