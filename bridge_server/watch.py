"""A session's change events for one watcher: replay from the log, then live, never a gap.

The order matters: subscribe first, then read where the session stands, then replay the log up to
there, then follow the live channel. Live events at or below the last revision sent are dropped
(they were replayed); a live event beyond the next expected revision means something was missed,
and the log fills the gap. When the log no longer reaches back far enough, the watcher gets a
HISTORY_GONE event and the stream goes on from the oldest revision the log still holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge_server.events import ChangeEvent, EventKind, decode_event
from bridge_server.fanout import END_OF_STREAM, RESYNC, EventHub
from bridge_server.store import VariableStore
from unified_bridge._backoff import backoff_delay
from unified_bridge.errors import SessionNotFoundError

__all__ = ["watch_session"]

# Replay reads the log in pages sized by bytes, not only by count: a page holds about
# _LOG_PAGE_BYTES of events, judged by the events of the page before (the first page is small, as
# an event may be as large as half a message).
_LOG_PAGE_BYTES = 4 * 1024 * 1024
_LOG_PAGE_MAX = 1000
_LOG_PAGE_FIRST = 16
_MAX_RETRY_DELAY = 1.0


async def watch_session(
    store: VariableStore,
    hub: EventHub,
    session_id: str,
    from_revision: int,
    from_now: bool = False,
) -> AsyncIterator[ChangeEvent]:
    session_id = store.checked_session_id(session_id)
    subscription = await hub.subscribe(store.keys(session_id).channel)
    try:
        current = await store.watch_position(session_id)
        if current is None:
            raise SessionNotFoundError.for_id(session_id)
        last = current if from_now else from_revision
        if last > current:
            # The session was deleted and created again since the watcher's last event.
            yield _marker(EventKind.HISTORY_GONE, 0)
            last = 0
        async for event in _from_log(store, session_id, last, current):
            last = event.revision
            yield event
        yield _marker(EventKind.CAUGHT_UP, last)

        idle = store.settings.watch_idle_check_seconds
        while True:
            try:
                data = await asyncio.wait_for(subscription.get(), timeout=idle)
            except TimeoutError:
                data = RESYNC
            if data == END_OF_STREAM:
                return
            if data == RESYNC:
                # Live delivery may have missed something, or it is simply quiet: check the log.
                current = await _position_when_reachable(store, session_id)
                if current is None:
                    yield _marker(EventKind.SESSION_DELETED, last + 1)
                    return
                if current < last:
                    yield _marker(EventKind.HISTORY_GONE, 0)
                    last = 0
                async for event in _from_log(store, session_id, last, current):
                    last = event.revision
                    yield event
                continue
            event = decode_event(data)
            if event.revision <= last:
                continue
            if event.revision > last + 1:
                async for missed in _from_log(store, session_id, last, event.revision - 1):
                    last = missed.revision
                    yield missed
            if event.revision > last:
                last = event.revision
                yield event
            if event.kind is EventKind.SESSION_DELETED:
                return
    finally:
        await hub.unsubscribe(subscription)


async def _position_when_reachable(store: VariableStore, session_id: str) -> int | None:
    """Where the session stands, waiting out a Redis outage instead of ending the stream."""
    failures = 0
    while True:
        try:
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
