"""Applying watch events to a context's cache: gaps, history gone, duplicates, session deletion."""

from __future__ import annotations

import pytest

from unified_bridge import _core
from unified_bridge._cache import MISS
from unified_bridge._core import SessionCore
from unified_bridge._watch import StreamBackoff, WatchCursor
from unified_bridge.errors import BridgeUnavailableError, SessionNotFoundError
from unified_bridge.proto import unified_bridge_pb2 as pb2


def event(kind: int, revision: int, *changes: tuple[str, str, int, int | None]) -> pb2.WatchEvent:
    ev = pb2.WatchEvent(kind=kind, revision=revision)  # type: ignore[arg-type]
    for var_id, name, version, value in changes:
        change = ev.changes.add(id=var_id, name=name, version=version)
        if value is not None:
            change.value.integer_value = value
    return ev


class Follower:
    """The event-handling half of a follower, without a stream."""

    def __init__(self) -> None:
        self.core = SessionCore("s")
        self.cursor = WatchCursor("s", None, 1, StreamBackoff())

    def feed(self, ev: pb2.WatchEvent) -> None:
        if not self.cursor.is_duplicate(ev):
            self.core.on_watch_event(ev, self.cursor.expected_revision(ev))
            self.cursor.advance(ev)

    def cache_x(self, version: int, value: int) -> None:
        assert self.core.cache.fill(self.core.cache.begin_read(), "var_x_1", "x", version, value)


@pytest.fixture
def follower() -> Follower:
    f = Follower()
    assert f.cursor.request().from_now
    f.feed(event(pb2.EVENT_KIND_CAUGHT_UP, 10))
    assert f.core.cache.serving
    assert f.cursor.request().from_revision == 10
    return f


def test_in_order_events_refresh(follower: Follower) -> None:
    follower.cache_x(3, 30)
    follower.feed(event(pb2.EVENT_KIND_UPDATED, 11, ("var_x_1", "x", 4, 40)))
    assert follower.core.cache.lookup("x") == 40
    assert follower.core.revision == 11


def test_revision_gap_clears_the_cache(follower: Follower) -> None:
    follower.cache_x(3, 30)
    follower.core.cache.fill(follower.core.cache.begin_read(), "var_y_1", "y", 0, 1)
    follower.feed(event(pb2.EVENT_KIND_UPDATED, 13, ("var_x_1", "x", 5, 50)))  # 11 and 12 never came
    assert follower.core.cache.stats().size == 0


def test_duplicates_are_ignored(follower: Follower) -> None:
    follower.feed(event(pb2.EVENT_KIND_UPDATED, 11, ("var_x_1", "x", 4, 40)))
    follower.cache_x(4, 40)
    follower.feed(event(pb2.EVENT_KIND_UPDATED, 11, ("var_x_1", "x", 4, 40)))
    assert follower.core.cache.stats().size == 1


def test_history_gone_clears_and_resumes_from_its_revision(follower: Follower) -> None:
    follower.cache_x(3, 30)
    follower.feed(event(pb2.EVENT_KIND_HISTORY_GONE, 500))
    assert follower.core.cache.stats().size == 0
    assert follower.cursor.request().from_revision == 500
    follower.feed(event(pb2.EVENT_KIND_UPDATED, 501, ("var_x_1", "x", 9, 90)))
    follower.cache_x(9, 90)
    assert follower.core.cache.lookup("x") == 90


def test_session_deleted_stops_serving(follower: Follower) -> None:
    follower.cache_x(3, 30)
    follower.feed(event(pb2.EVENT_KIND_SESSION_DELETED, 11))
    assert not follower.core.cache.serving
    assert follower.core.cache.stats().size == 0


def test_delete_event_forgets_the_definition(follower: Follower) -> None:
    follower.cache_x(3, 30)
    follower.feed(event(pb2.EVENT_KIND_DELETED, 11, ("var_x_1", "x", 3, None)))
    assert follower.core.cache.stats().size == 0


def test_reconnection_rotates_targets_with_capped_backoff() -> None:
    cursor = WatchCursor("s", 5, 3, StreamBackoff(initial=0.01, maximum=0.04))
    first = cursor.target
    delays = [cursor.lost(BridgeUnavailableError("down")) for _ in range(6)]
    assert cursor.target == first  # 6 moves over 3 targets
    assert all(d is not None and d <= 0.04 for d in delays)
    assert cursor.lost(SessionNotFoundError("Session not found: s")) is None


def test_events_for_uncached_variables_are_not_decoded(
    follower: Follower, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[object] = []
    real = _core.decode_change_value
    monkeypatch.setattr(_core, "decode_change_value", lambda v: decoded.append(v) or real(v))
    follower.feed(event(pb2.EVENT_KIND_UPDATED, 11, ("var_y_1", "y", 4, 40)))
    assert decoded == []
    follower.cache_x(3, 30)
    follower.feed(event(pb2.EVENT_KIND_UPDATED, 12, ("var_x_1", "x", 4, 40)))
    assert len(decoded) == 1
    assert follower.core.cache.lookup("x") == 40


def test_an_undecodable_event_value_invalidates(follower: Follower) -> None:
    follower.cache_x(3, 30)
    ev = event(pb2.EVENT_KIND_UPDATED, 11, ("var_x_1", "x", 4, None))
    ev.changes[0].value.tensor_value.shape.append(2)  # two values promised, none sent
    token = follower.core.cache.begin_read()
    follower.feed(ev)
    assert follower.core.cache.lookup("x") is MISS
    assert not follower.core.cache.fill(token, "var_x_1", "x", 4, 40)  # invalidated, not just forgotten


def test_a_reconnect_asks_to_check_the_time_of_the_last_change_it_holds() -> None:
    cursor = WatchCursor("s", 0, 1, StreamBackoff())
    assert not cursor.request().HasField("from_revision_time")
    change = event(pb2.EVENT_KIND_UPDATED, 4, ("var_x_00000001", "x", 2, 7))
    change.time.FromMilliseconds(1_700_000_000_123)
    cursor.advance(change)
    request = cursor.request()
    assert (request.from_revision, request.from_revision_time.ToMilliseconds()) == (4, 1_700_000_000_123)
    # A marker past the change: the cursor holds a revision whose event it has no time of.
    cursor.advance(event(pb2.EVENT_KIND_HISTORY_GONE, 9))
    request = cursor.request()
    assert request.from_revision == 9
    assert not request.HasField("from_revision_time")
