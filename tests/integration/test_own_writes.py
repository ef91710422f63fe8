"""A watcher's own writes: a stream with a writer token is not sent the events of the writes that
carry the same token. It learns of each, in order, with ids and versions and no values: on the next
message it gets, or alone within the frontend's flush delay. Everyone else gets them whole."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import pytest
import redis

from bridge_server.events import decode_event
from bridge_server.keys import session_keys
from tests.integration.helpers import EventReader, create_session, register_int, revision, set_int
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

WRITER = "own-writer_1"


@dataclasses.dataclass
class OwnStream:
    """A frontend, a stub on it, and a stream that follows the session as the writer WRITER."""

    frontend: Any
    stub: pb_grpc.UnifiedBridgeStub
    reader: EventReader


@contextlib.contextmanager
def own_stream(
    frontend_factory, session_id: str, names: Sequence[str] = ("x",), **settings: Any
) -> Iterator[OwnStream]:
    """A session with integer variables ``names``, followed from now on as the writer WRITER, on
    a frontend started with ``settings``."""
    frontend = frontend_factory(**settings)
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        for name in names:
            register_int(stub, session_id, name)
        reader = EventReader(stub, session_id, from_now=True, writer=WRITER)
        try:
            assert reader.until_caught_up() == []
            yield OwnStream(frontend, stub, reader)
        finally:
            reader.close()


def _long_names(count: int) -> list[str]:
    return [f"variable_{i:03d}_" + "n" * 106 for i in range(count)]  # 120 characters


def _listed(event: pb.WatchEvent) -> list[tuple[int, list[tuple[str, int, bool]]]]:
    """(revision, [(name, version, carries a value)]) of each own write an event lists."""
    return [
        (own.revision, [(c.name, c.version, c.HasField("value")) for c in own.changes])
        for own in event.own_writes
    ]


def test_own_writes_ride_on_the_next_event_and_others_see_them_whole(frontend_factory, session_id):
    # Nothing goes alone here: the flush delay is a minute.
    with own_stream(frontend_factory, session_id, ("x", "y"), watch_own_writes_flush_seconds=60) as own:
        stub = own.stub
        other = EventReader(stub, session_id, from_now=True)
        try:
            assert other.until_caught_up() == []
            for value in (1, 2):
                set_int(stub, session_id, "x", value, writer=WRITER)
            batch = pb.SetVariablesRequest(session_id=session_id, writer=WRITER)
            batch.updates.add(name_or_id="x", value=pb.Value(integer_value=3))
            batch.updates.add(name_or_id="y", value=pb.Value(integer_value=4))
            stub.SetVariables(batch)
            set_int(stub, session_id, "y", 5, writer="someone-else")
            carrier = own.reader.next()
            whole = [other.next() for _ in range(4)]
        finally:
            other.close()
    assert carrier is not None
    assert (carrier.revision, carrier.kind) == (6, pb.EVENT_KIND_UPDATED)
    assert carrier.changes[0].value.integer_value == 5
    assert _listed(carrier) == [
        (3, [("x", 1, False)]),
        (4, [("x", 2, False)]),
        (5, [("x", 3, False), ("y", 1, False)]),
    ]
    assert all(own_write.HasField("time") for own_write in carrier.own_writes)
    sent_whole = [(e.revision, len(e.own_writes)) for e in whole if e is not None]
    assert sent_whole == [(3, 0), (4, 0), (5, 0), (6, 0)]
    assert [c.value.integer_value for c in whole[2].changes] == [3, 4]  # type: ignore[union-attr]


def test_own_writes_go_alone_when_nothing_else_comes(frontend_factory, session_id):
    with own_stream(frontend_factory, session_id, watch_own_writes_flush_seconds=0.05) as own:
        for value in (1, 2, 3):
            set_int(own.stub, session_id, "x", value, writer=WRITER)
        listed: list[tuple[int, list[tuple[str, int, bool]]]] = []
        while len(listed) < 3:
            event = own.reader.next()
            assert event is not None
            assert (event.kind, len(event.changes)) == (pb.EVENT_KIND_OWN_WRITES, 0)
            assert event.revision == event.own_writes[-1].revision
            listed += _listed(event)
    assert listed == [(2, [("x", 1, False)]), (3, [("x", 2, False)]), (4, [("x", 3, False)])]


def test_a_stream_resumed_after_own_writes_gets_no_history_gone(frontend_factory, session_id):
    # The time an OWN_WRITES message lists is the logged one: a watcher resuming from it with
    # from_revision_time is not told that its revision names another write.
    with own_stream(frontend_factory, session_id, watch_own_writes_flush_seconds=0.01) as own:
        stub = own.stub
        set_int(stub, session_id, "x", 1, writer=WRITER)
        alone = own.reader.next()
        own.reader.close()
        assert alone is not None
        assert alone.kind == pb.EVENT_KIND_OWN_WRITES
        set_int(stub, session_id, "x", 2)
        resumed = EventReader(
            stub,
            session_id,
            from_revision=alone.revision,
            from_revision_time=alone.own_writes[-1].time,
            writer=WRITER,
        )
        try:
            replayed = resumed.until_caught_up()
        finally:
            resumed.close()
    assert [(e.revision, e.kind) for e in replayed] == [(3, pb.EVENT_KIND_UPDATED)]


def test_with_no_flush_delay_own_writes_are_sent_whole(frontend_factory, session_id):
    with own_stream(frontend_factory, session_id, watch_own_writes_flush_seconds=0) as own:
        set_int(own.stub, session_id, "x", 1, writer=WRITER)
        event = own.reader.next()
    assert event is not None
    assert (event.revision, event.kind, event.changes[0].value.integer_value) == (2, pb.EVENT_KIND_UPDATED, 1)
    assert not event.own_writes


def test_a_replay_sends_own_writes_whole(stub, session_id):
    create_session(stub, session_id)
    register_int(stub, session_id, "x")
    set_int(stub, session_id, "x", 1, writer=WRITER)
    reader = EventReader(stub, session_id, from_revision=1, writer=WRITER)
    try:
        replayed = reader.until_caught_up()
    finally:
        reader.close()
    whole = [(e.revision, e.changes[0].value.integer_value, len(e.own_writes)) for e in replayed]
    assert whole == [(2, 1, 0)]


@pytest.mark.parametrize("writer", ["has space", "new\nline", "é", "w" * 65])
def test_a_malformed_writer_token_is_refused(stub, session_id, writer):
    create_session(stub, session_id)
    register_int(stub, session_id, "x")
    with pytest.raises(grpc.RpcError) as write:
        set_int(stub, session_id, "x", 1, writer=writer)
    assert write.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "writer" in (write.value.details() or "")
    batch = pb.SetVariablesRequest(session_id=session_id, writer=writer)
    batch.updates.add(name_or_id="x", value=pb.Value(integer_value=2))
    with pytest.raises(grpc.RpcError) as batch_write:
        stub.SetVariables(batch)
    assert batch_write.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reader = EventReader(stub, session_id, writer=writer)
    try:
        with pytest.raises(grpc.RpcError) as watch:
            reader.next()
    finally:
        reader.close()
    assert watch.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="x")).version == 0


def test_the_channel_copy_is_the_logged_event_then_the_token(stub, redis_url, session_id):
    # A reader that knows no tokens (a frontend of an earlier version, during a rolling upgrade)
    # reads the channel's copy as the logged event: the token follows its last change.
    create_session(stub, session_id)
    register_int(stub, session_id, "x")
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        pubsub.ssubscribe(session_keys("ub", session_id).channel)
        while pubsub.get_sharded_message(timeout=5) is None:  # the confirmation
            pass
        set_int(stub, session_id, "x", 1, writer=WRITER)
        published = None
        while published is None:
            published = pubsub.get_sharded_message(timeout=5)
        logged = client.xrange(session_keys("ub", session_id).log, min="2-0", max="2-0")[0][1][b"e"]
    finally:
        pubsub.close()
        client.close()
    assert published["data"] == logged + WRITER.encode()
    assert decode_event(published["data"]).writer == WRITER
    assert decode_event(logged) == decode_event(published["data"])
    assert decode_event(logged).writer == ""


def test_own_writes_held_back_never_pass_the_message_limit(frontend_factory, session_id):
    # 64 KiB messages: own writes are let go at a quarter of that, so 40 writes of 10 variables with
    # long names (about 2.7 KB listed each) go in several messages before anything else comes.
    names = _long_names(10)
    limits = {"watch_own_writes_flush_seconds": 60, "max_message_bytes": 64 * 1024}
    with own_stream(frontend_factory, session_id, names, **limits) as own:
        stub = own.stub
        start = revision(stub, session_id)
        for value in range(40):
            batch = pb.SetVariablesRequest(session_id=session_id, writer=WRITER)
            for name in names:
                batch.updates.add(name_or_id=name, value=pb.Value(integer_value=value))
            stub.SetVariables(batch)
        set_int(stub, session_id, names[0], 99)  # carries what is still held
        received = []
        while not received or received[-1].kind != pb.EVENT_KIND_UPDATED:
            event = own.reader.next()
            assert event is not None
            received.append(event)
    listed = [own.revision for event in received for own in event.own_writes]
    assert listed == list(range(start + 1, start + 41))
    assert [e.kind for e in received[:-1]] == [pb.EVENT_KIND_OWN_WRITES] * (len(received) - 1)
    assert len(received) > 2
    assert all(event.ByteSize() <= 16 * 1024 + 3 * 1024 for event in received)  # a quarter, plus one write
    assert received[-1].revision == start + 41


def test_own_writes_and_a_large_event_past_the_limit_together_go_one_after_the_other(
    frontend_factory, session_id
):
    names = _long_names(200)
    limits = {"watch_own_writes_flush_seconds": 60, "max_message_bytes": 64 * 1024}
    with own_stream(frontend_factory, session_id, names, **limits) as stream:
        stub = stream.stub
        start = revision(stub, session_id)
        own = pb.SetVariablesRequest(session_id=session_id, writer=WRITER)
        for name in names[:58]:  # about 15.6 KB listed: held back, under the quarter
            own.updates.add(name_or_id=name, value=pb.Value(integer_value=1))
        stub.SetVariables(own)
        theirs = pb.SetVariablesRequest(session_id=session_id)
        for name in names:  # an event of about 54 KB: with the list, past 64 KiB
            theirs.updates.add(name_or_id=name, value=pb.Value(integer_value=2))
        stub.SetVariables(theirs)
        first, second = stream.reader.next(), stream.reader.next()
    assert first is not None
    assert second is not None
    assert (first.kind, [own.revision for own in first.own_writes]) == (pb.EVENT_KIND_OWN_WRITES, [start + 1])
    assert (second.kind, second.revision, len(second.changes)) == (pb.EVENT_KIND_UPDATED, start + 2, 200)
    assert not second.own_writes
    assert first.ByteSize() + second.ByteSize() > 64 * 1024


def test_a_frontend_shutting_down_lists_the_own_writes_it_held(frontend_factory, session_id):
    with own_stream(frontend_factory, session_id, watch_own_writes_flush_seconds=60) as own:
        set_int(own.stub, session_id, "x", 1, writer=WRITER)
        own.frontend.stop(grace=5)
        last = own.reader.next()
        ended = own.reader.next()
    assert last is not None
    assert (last.kind, [own.revision for own in last.own_writes]) == (pb.EVENT_KIND_OWN_WRITES, [2])
    assert ended is None  # then the stream ends cleanly


def test_a_watcher_past_its_queue_replays_after_the_own_writes_it_held(frontend_factory, session_id):
    # Held own writes count against the watcher's queue like queued events; when the queue
    # overflows, the replay goes on after them and they ride on its first event.
    limits = {"watch_own_writes_flush_seconds": 60, "max_watch_queue": 2}
    with own_stream(frontend_factory, session_id, **limits) as own:
        set_int(own.stub, session_id, "x", 1, writer=WRITER)
        for value in range(2, 12):
            set_int(own.stub, session_id, "x", value)
        received = []
        while not received or received[-1].revision < 12:
            event = own.reader.next()
            assert event is not None
            received.append(event)
    listed = [own.revision for event in received for own in event.own_writes]
    sent = [event.revision for event in received if event.kind == pb.EVENT_KIND_UPDATED]
    assert listed == [2]
    assert sent == list(range(3, 13))
    assert received[0].own_writes


@pytest.mark.parametrize("writer", ["", "w" * 64, "A-z_09"])
def test_writer_tokens_at_the_edges_are_accepted(stub, session_id, writer):
    create_session(stub, session_id)
    register_int(stub, session_id, "x")
    assert set_int(stub, session_id, "x", 1, writer=writer).version == 1
    reader = EventReader(stub, session_id, from_revision=0, writer=writer)
    try:
        assert [e.revision for e in reader.until_caught_up()] == [1, 2]
    finally:
        reader.close()
