"""A context's cache is not sent back the events of its own writes, and stays coherent: it learns of
them, without values, on the next message or within the frontend's flush delay."""

from __future__ import annotations

import logging
import time

import pytest

from unified_bridge import SessionContext, connect
from unified_bridge.proto import unified_bridge_pb2 as pb


def _stream_revision(ctx: SessionContext) -> int:
    """The revision the context's cache stream has reached."""
    follower = ctx._follower
    assert follower is not None
    return follower.cursor.revision or 0


def _record_messages(ctx: SessionContext) -> list[tuple[int, int, int]]:
    """(kind, revision, own writes listed) of every message the context's cache stream applies."""
    seen: list[tuple[int, int, int]] = []
    core = ctx._core
    apply = core.on_watch_event

    def recording(event, expected_revision: int) -> None:
        seen.append((event.kind, event.revision, len(event.own_writes)))
        apply(event, expected_revision)

    core.on_watch_event = recording  # type: ignore[method-assign]
    return seen


def _until(condition, what: str) -> None:
    """Wait for ``condition``, which ``what`` describes (the test's timeout bounds the wait)."""
    while not condition():
        time.sleep(0.002)


def test_own_writes_are_held_back_and_ride_on_the_next_event(frontend_factory, session_id, caplog) -> None:
    frontend = frontend_factory(watch_own_writes_flush_seconds=60)  # own writes never go alone
    caplog.set_level(logging.WARNING, logger="unified_bridge")
    with connect(frontend.target) as client:
        ctx = client.session(session_id)
        other = client.session(session_id, cache=False)
        ctx["x"], ctx["y"] = 0, 0
        assert ctx.wait_for_cache(10)
        held_at = ctx.revision
        _until(lambda: _stream_revision(ctx) == held_at, "the registrations reach the stream")
        seen = _record_messages(ctx)
        for value in range(1, 21):
            ctx["x"] = value
        ctx.update_variables({"x": 21, "y": 1}, atomic=True)
        assert _stream_revision(ctx) == held_at  # 21 writes, not one message
        assert (ctx["x"], ctx["y"]) == (21, 1)  # read-your-writes from the cache
        other["y"] = 2
        _until(lambda: _stream_revision(ctx) == other.revision, "the other write arrives")
        hits = ctx.cache_stats()["hits"]
        assert (ctx["x"], ctx["y"]) == (21, 2)
        assert ctx.cache_stats()["hits"] == hits + 2
        assert seen == [(pb.EVENT_KIND_UPDATED, other.revision, 21)]  # one message for 22 writes
        assert ctx._follower is not None
        assert ctx._follower.reconnects == 0
        ctx.close()
    assert not [r for r in caplog.records if "revision gap" in r.getMessage()]


def test_a_snapshot_after_own_writes_is_served_by_the_cache(frontend_factory, session_id) -> None:
    frontend = frontend_factory(watch_own_writes_flush_seconds=0.01)
    with connect(frontend.target) as client, client.session(session_id) as ctx:
        ctx["temperature"], ctx["model"] = 0.5, "m0"
        assert ctx.wait_for_cache(10)
        _until(lambda: _stream_revision(ctx) == ctx.revision, "the registrations reach the stream")
        seen = _record_messages(ctx)
        ctx.update_variables({"temperature": 0.7, "model": "m1"}, atomic=True)
        _until(lambda: _stream_revision(ctx) == ctx.revision, "the own writes are listed")
        assert seen == [(pb.EVENT_KIND_OWN_WRITES, ctx.revision, 1)]
        hits = ctx.cache_stats()["hits"]
        assert ctx.get_variables(["temperature", "model"]) == {"temperature": 0.7, "model": "m1"}
        assert ctx.cache_stats()["hits"] == hits + 2


@pytest.mark.parametrize("flush", [0.0, 0.01])
def test_two_writers_of_one_variable_see_each_other(frontend_factory, session_id, flush) -> None:
    first, second = frontend_factory(watch_own_writes_flush_seconds=flush), frontend_factory()
    with (
        connect(first.target) as c1,
        connect(second.target) as c2,
        c1.session(session_id) as a,
        c2.session(session_id) as b,
    ):
        a["x"] = 0
        assert a.wait_for_cache(10)
        assert b.wait_for_cache(10)
        for value in range(1, 30):
            writer, reader = (a, b) if value % 2 else (b, a)
            writer["x"] = value
            written = writer.revision
            _until(lambda r=reader, w=written: _stream_revision(r) >= w, "the write reaches the reader")
            assert reader["x"] == value
            assert writer["x"] == value
