"""Watch streams: replay from the change log, then live, no gaps, an explicit HISTORY_GONE."""

from __future__ import annotations

import grpc
import pytest
import redis

from bridge_server.keys import session_keys
from tests.integration.helpers import EventReader, create_session, register_int, set_int
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


def test_replay_from_zero_then_live(stub, session_id):
    create_session(stub, session_id)
    register_int(stub, session_id, "x")
    set_int(stub, session_id, "x", 1)
    reader = EventReader(stub, session_id)
    try:
        replayed = reader.until_caught_up()
        assert [(e.revision, e.kind) for e in replayed] == [
            (1, pb.EVENT_KIND_REGISTERED),
            (2, pb.EVENT_KIND_UPDATED),
        ]
        assert replayed[1].changes[0].value.integer_value == 1
        set_int(stub, session_id, "x", 2)
        live = reader.next()
        assert live is not None
        assert (live.revision, live.kind, live.changes[0].version) == (3, pb.EVENT_KIND_UPDATED, 2)
        assert live.changes[0].value.integer_value == 2
    finally:
        reader.close()


def test_resume_from_a_revision_skips_what_was_seen(stub, session_id):
    create_session(stub, session_id)
    register_int(stub, session_id, "x")
    for value in range(1, 5):
        set_int(stub, session_id, "x", value)
    reader = EventReader(stub, session_id, from_revision=3)
    try:
        assert [e.revision for e in reader.until_caught_up()] == [4, 5]
    finally:
        reader.close()


def test_from_now_sends_no_replay(stub, session_id):
    create_session(stub, session_id)
    register_int(stub, session_id, "x")
    reader = EventReader(stub, session_id, from_now=True)
    try:
        assert reader.until_caught_up() == []
        set_int(stub, session_id, "x", 7)
        event = reader.next()
        assert event is not None
        assert event.revision == 2
    finally:
        reader.close()


def test_history_gone_when_log_no_longer_reaches_back(frontend_factory, session_id):
    frontend = frontend_factory(change_log_length=3)
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        register_int(stub, session_id, "x")
        for value in range(1, 8):
            set_int(stub, session_id, "x", value)  # revisions 2..8; the log keeps 6..8
        reader = EventReader(stub, session_id, from_revision=1)
        try:
            replayed = reader.until_caught_up()
        finally:
            reader.close()
    assert replayed[0].kind == pb.EVENT_KIND_HISTORY_GONE
    assert replayed[0].revision == 5
    assert [e.revision for e in replayed[1:]] == [6, 7, 8]


def test_watch_of_unknown_session_is_not_found(stub, session_id):
    reader = EventReader(stub, session_id)
    with pytest.raises(grpc.RpcError) as info:
        reader.next()
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"Session not found: {session_id}" in info.value.details()


def test_deleting_the_session_ends_the_stream(stub, session_id):
    create_session(stub, session_id)
    reader = EventReader(stub, session_id)
    reader.until_caught_up()
    stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id))
    final = reader.next()
    assert final is not None
    assert final.kind == pb.EVENT_KIND_SESSION_DELETED
    assert reader.next() is None


def test_batch_is_one_event_with_every_change(stub, session_id):
    create_session(stub, session_id)
    for name in ("a", "b"):
        register_int(stub, session_id, name)
    reader = EventReader(stub, session_id, from_now=True)
    try:
        reader.until_caught_up()
        stub.SetVariables(
            pb.SetVariablesRequest(
                session_id=session_id,
                atomic=True,
                updates=[
                    pb.VariableUpdate(name_or_id="a", value=pb.Value(integer_value=1)),
                    pb.VariableUpdate(name_or_id="b", value=pb.Value(integer_value=2)),
                ],
            )
        )
        event = reader.next()
    finally:
        reader.close()
    assert event is not None
    assert event.revision == 3
    assert [(c.name, c.value.integer_value) for c in event.changes] == [("a", 1), ("b", 2)]


def test_slow_watcher_falls_back_to_the_log_without_gaps(frontend_factory, session_id):
    frontend = frontend_factory(max_watch_queue=2)
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        register_int(stub, session_id, "x")
        reader = EventReader(stub, session_id, from_now=True)
        try:
            reader.until_caught_up()
            for value in range(1, 51):
                set_int(stub, session_id, "x", value)
            revisions = [reader.next().revision for _ in range(50)]
        finally:
            reader.close()
    assert revisions == list(range(2, 52))


@pytest.mark.parametrize(
    "bounds",
    [{"max_watch_queue_bytes": 2_000}, {"max_watch_buffer_bytes": 2_000}],
    ids=["per watcher", "per frontend"],
)
def test_a_watcher_past_its_byte_budget_goes_on_from_the_log(frontend_factory, session_id, bounds):
    """Queues are bounded in bytes too (each watcher's, and all of a frontend's together): a slow
    watcher that falls behind loses what it had queued and goes on from the change log, no gap."""
    frontend = frontend_factory(**bounds)
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        stub.RegisterVariable(
            pb.RegisterVariableRequest(
                session_id=session_id, name="s", type=pb.VARIABLE_TYPE_STRING, value=pb.Value(string_value="")
            )
        )
        reader = EventReader(stub, session_id, from_now=True)
        try:
            reader.until_caught_up()
            for value in range(1, 41):  # 10 KB events: none fits a 2,000-byte queue
                stub.SetVariable(
                    pb.SetVariableRequest(
                        session_id=session_id, name_or_id="s", value=pb.Value(string_value=f"{value:0>10000}")
                    )
                )
            events = [reader.next() for _ in range(40)]
        finally:
            reader.close()
    assert [event.revision for event in events] == list(range(2, 42))
    assert events[-1].changes[0].value.string_value == f"{40:0>10000}"
    budget = frontend.server.hub.budget
    assert budget.overflows > 0
    assert budget.total_bytes >= 0


def test_replay_reads_the_log_in_pages_bounded_by_bytes(frontend_factory, session_id):
    """A replay of big events reads pages of a few MiB, not 1000 events of up to half a message each."""
    frontend = frontend_factory()
    store = frontend.server.store
    pages: list[int] = []
    read_log = store.read_log

    async def recording(session: str, after: int, count: int = 1000) -> list[bytes]:
        raws = await read_log(session, after, count)
        pages.append(sum(len(raw) for raw in raws))
        return raws

    store.read_log = recording  # type: ignore[method-assign]
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        stub.RegisterVariable(
            pb.RegisterVariableRequest(
                session_id=session_id, name="s", type=pb.VARIABLE_TYPE_STRING, value=pb.Value(string_value="")
            )
        )
        big = "x" * (200 * 1024)
        for _ in range(40):  # 8 MB of log
            stub.SetVariable(
                pb.SetVariableRequest(session_id=session_id, name_or_id="s", value=pb.Value(string_value=big))
            )
        reader = EventReader(stub, session_id, from_revision=0)
        try:
            revisions = [reader.next().revision for _ in range(41)]
        finally:
            reader.close()
    assert revisions == list(range(1, 42))
    assert len(pages) > 2
    assert max(pages) <= 5 * 1024 * 1024


def test_the_change_log_is_bounded_in_bytes(frontend_factory, redis_url, session_id):
    """--change-log-bytes bounds a session's log as --change-log-length does its count: the oldest
    events go, and a watcher from further back is told HISTORY_GONE."""
    import redis as redis_client

    from bridge_server.keys import session_keys

    frontend = frontend_factory(change_log_bytes=50_000)
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        stub.RegisterVariable(
            pb.RegisterVariableRequest(
                session_id=session_id, name="s", type=pb.VARIABLE_TYPE_STRING, value=pb.Value(string_value="")
            )
        )
        for value in range(1, 21):  # 20 events of ~10 KB: 200 KB, four times the log's bytes
            stub.SetVariable(
                pb.SetVariableRequest(
                    session_id=session_id, name_or_id="s", value=pb.Value(string_value=f"{value:0>10000}")
                )
            )
        keys = session_keys("ub", session_id)
        with redis_client.Redis.from_url(redis_url) as direct:
            kept = direct.xlen(keys.log)
            logged = int(direct.hget(keys.session, "log_bytes"))
        assert 1 <= kept <= 5
        assert logged <= 50_000
        reader = EventReader(stub, session_id, from_revision=0)
        try:
            gone = reader.next()
            rest = [reader.next() for _ in range(kept)]
        finally:
            reader.close()
    assert gone.kind == pb.EVENT_KIND_HISTORY_GONE
    assert [event.revision for event in rest] == list(range(22 - kept, 22))


def _lose_revision_3(redis_url: str, session_id: str, replacement: bytes | None) -> None:
    """What a failover may do: the new master never got revision 3's write; with ``replacement``, it
    has since written another change under that revision (without telling the live channel)."""
    keys = session_keys("ub", session_id)
    with redis.Redis.from_url(redis_url) as client:
        kept = client.xrange(keys.log, "-", "2-0")
        client.delete(keys.log)
        for entry_id, fields in kept:
            client.xadd(keys.log, fields, id=entry_id)
        if replacement is not None:
            client.xadd(keys.log, {"e": replacement}, id="3-0")
        client.hset(keys.session, "revision", 3 if replacement is not None else 2)


def _watch_to_revision_3(stub, session_id: str) -> EventReader:
    create_session(stub, session_id)
    register_int(stub, session_id, "x", 0)  # revision 1
    set_int(stub, session_id, "x", 1)  # revision 2
    reader = EventReader(stub, session_id)
    assert [e.revision for e in reader.until_caught_up()] == [1, 2]
    set_int(stub, session_id, "x", 2)  # revision 3, sent to the watcher
    assert reader.next().revision == 3
    return reader


@pytest.mark.real_redis
def test_a_revision_a_failover_gave_to_another_write_is_history_gone_live(stub, redis_url, session_id):
    reader = _watch_to_revision_3(stub, session_id)
    try:
        _lose_revision_3(redis_url, session_id, replacement=None)
        set_int(stub, session_id, "x", 5)  # the new master's revision 3, published live
        assert reader.next().kind == pb.EVENT_KIND_HISTORY_GONE
        replayed = [reader.next() for _ in range(3)]
        assert [e.revision for e in replayed] == [1, 2, 3]
        assert replayed[-1].changes[0].value.integer_value == 5
    finally:
        reader.close()


@pytest.mark.real_redis
def test_a_revision_a_failover_gave_to_another_write_is_history_gone_after_a_drop(
    stub, redis_url, session_id
):
    reader = _watch_to_revision_3(stub, session_id)
    try:
        keys = session_keys("ub", session_id)
        with redis.Redis.from_url(redis_url) as client:
            original = client.xrange(keys.log, "3-0", "3-0")[0][1][b"e"]
        header, _, body = original.partition(b"\n")
        magic, revision, kind, time_ms, count = header.split(b" ")
        other = b" ".join([magic, revision, kind, str(int(time_ms) + 1).encode(), count]) + b"\n" + body
        _lose_revision_3(redis_url, session_id, replacement=other)
        with redis.Redis.from_url(redis_url) as client:
            client.client_kill_filter(_type="pubsub")  # live delivery interrupted: the frontend resyncs
        assert reader.next().kind == pb.EVENT_KIND_HISTORY_GONE
        assert [reader.next().revision for _ in range(3)] == [1, 2, 3]
    finally:
        reader.close()


def test_a_resync_without_a_failover_replays_nothing_twice(frontend_factory, redis_url, session_id):
    frontend = frontend_factory(redis_url=redis_url)
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        reader = _watch_to_revision_3(stub, session_id)
        try:
            with redis.Redis.from_url(redis_url) as client:
                client.client_kill_filter(_type="pubsub")
            set_int(stub, session_id, "x", 7)
            event = reader.next()
            assert (event.kind, event.revision) == (pb.EVENT_KIND_UPDATED, 4)
        finally:
            reader.close()


def test_a_watcher_resuming_after_a_revision_that_now_names_another_write_gets_history_gone(stub, session_id):
    create_session(stub, session_id)
    register_int(stub, session_id, "x", 0)  # revision 1
    set_int(stub, session_id, "x", 1)  # revision 2
    logged = EventReader(stub, session_id)
    try:
        first, second = logged.until_caught_up()
    finally:
        logged.close()
    held = second.time.ToMilliseconds()

    def resume(time_ms: int) -> list[pb.WatchEvent]:
        request = pb.WatchSessionRequest(session_id=session_id, from_revision=2)
        request.from_revision_time.FromMilliseconds(time_ms)
        call = stub.WatchSession(request, timeout=10)
        events = []
        for event in call:
            events.append(event)
            if event.kind == pb.EVENT_KIND_CAUGHT_UP:
                break
        call.cancel()
        return events

    # The log holds the same change at revision 2: nothing to replay.
    assert [e.kind for e in resume(held)] == [pb.EVENT_KIND_CAUGHT_UP]
    # The watcher's revision 2 was another write (one a failover lost): history gone, the whole log.
    kinds = [(e.kind, e.revision) for e in resume(held + 1)]
    assert kinds == [
        (pb.EVENT_KIND_HISTORY_GONE, 0),
        (first.kind, 1),
        (second.kind, 2),
        (pb.EVENT_KIND_CAUGHT_UP, 2),
    ]
