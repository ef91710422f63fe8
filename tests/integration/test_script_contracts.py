"""Every mutation script, run once through a frontend, writes the event `bridge_server.events` decodes.

The events are read back raw (from the change log, or from the channel for a deleted session, whose
log goes with it) and decoded with `decode_event`; each must also re-encode to the very same bytes by
the layout documented in `bridge_server/events.py`, so the prelude keeps the format byte for byte.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
import redis

from bridge_server.events import ChangeEvent, EventKind, decode_event
from bridge_server.keys import SessionKeys, session_keys
from tests.integration.helpers import create_session, register_int, set_int
from tests.integration.test_import import import_request, int_var
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc
from unified_bridge.types import VariableType, decode_value, encode_value


def _encode(event: ChangeEvent) -> bytes:
    """The layout of bridge_server/events.py, written out independently of the scripts."""
    out = b"UB1 %d %d %d %d\n" % (event.revision, event.kind, event.time_ms, len(event.changes))
    for change in event.changes:
        head = f"{change.version} {change.id} {change.name} {change.type}".encode()
        if change.value is None:
            length = -1 if event.kind == EventKind.DELETED else -2
            out += head + b" %d\n" % length
        else:
            out += head + b" %d\n" % len(change.value) + change.value
    return out


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as connection:
        yield connection


def _keys(frontend, session_id: str) -> SessionKeys:
    return session_keys(frontend.server.store.settings.key_prefix, session_id)


def _logged(client: redis.Redis, keys: SessionKeys) -> list[ChangeEvent]:
    events = []
    for _, fields in client.xrange(keys.log):
        raw = fields[b"e"]
        event = decode_event(raw)
        assert _encode(event) == raw
        events.append(event)
    return events


def _integer(value: bytes | None) -> object:
    assert value is not None
    return decode_value(VariableType.INTEGER, value)


def test_register_set_delete_and_delete_session_write_the_events_they_declare(
    frontend, stub, client, session_id
):
    keys = _keys(frontend, session_id)
    create_session(stub, session_id)
    a = register_int(stub, session_id, "a", 7)
    b = register_int(stub, session_id, "b", 8)
    set_int(stub, session_id, "a", 9)
    stub.SetVariables(
        pb.SetVariablesRequest(
            session_id=session_id,
            updates=[
                pb.VariableUpdate(name_or_id="a", value=pb.Value(integer_value=10)),
                pb.VariableUpdate(name_or_id="b", value=pb.Value(integer_value=11), expected_version=0),
            ],
            atomic=True,
        )
    )
    stub.DeleteVariable(pb.DeleteVariableRequest(session_id=session_id, name_or_id="b"))

    events = _logged(client, keys)
    assert [(e.revision, e.kind) for e in events] == [
        (1, EventKind.REGISTERED),
        (2, EventKind.REGISTERED),
        (3, EventKind.UPDATED),
        (4, EventKind.UPDATED),
        (5, EventKind.DELETED),
    ]
    now = int(time.time() * 1000)
    assert all(now - 60_000 < e.time_ms <= now for e in events)
    changes = [[(c.id, c.name, c.type, c.version) for c in e.changes] for e in events]
    assert changes == [
        [(a.id, "a", "integer", 0)],
        [(b.id, "b", "integer", 0)],
        [(a.id, "a", "integer", 1)],
        [(a.id, "a", "integer", 2), (b.id, "b", "integer", 1)],
        [(b.id, "b", "integer", 1)],
    ]
    values = [[c.value for c in e.changes] for e in events]
    assert [[_integer(v) for v in row] for row in values[:4]] == [[7], [8], [9], [10, 11]]
    assert values[4] == [None]  # a deletion carries no value
    assert events[0].changes[0].value == encode_value(VariableType.INTEGER, 7)

    # The session's last event is published only (its log is deleted with it).
    pubsub = client.pubsub()
    try:
        pubsub.ssubscribe(keys.channel)
        deadline = time.monotonic() + 10
        while pubsub.get_message(timeout=0.1) is None and time.monotonic() < deadline:
            pass  # the subscription's confirmation
        stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id))
        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        assert message is not None, "no event was published for the deleted session"
        raw = message["data"]
    finally:
        pubsub.close()
    final = decode_event(raw)
    assert (final.revision, final.kind, final.changes) == (6, EventKind.SESSION_DELETED, ())
    assert _encode(final) == raw
    assert client.exists(keys.log) == 0


def test_a_small_import_writes_one_event_with_every_value(frontend, stub, client, session_id):
    sent = [int_var("x", 1, version=4), int_var("y", 2, version=9)]
    assert stub.ImportSession(import_request(session_id, sent, revision=10)).imported
    (event,) = _logged(client, _keys(frontend, session_id))
    assert (event.revision, event.kind) == (11, EventKind.IMPORTED)
    assert [(c.id, c.name, c.type, c.version, _integer(c.value)) for c in event.changes] == [
        (v.id, v.name, "integer", v.version, v.value.integer_value) for v in sent
    ]


def test_a_staged_import_writes_one_event_listing_every_variable_without_values(
    frontend_factory, client, session_id
):
    server = frontend_factory(import_chunk_size=2)
    sent = [int_var(f"n{i}", i, version=i) for i in range(5)]
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        assert stub.ImportSession(import_request(session_id, sent, revision=0)).imported
    (event,) = _logged(client, _keys(server, session_id))
    assert (event.revision, event.kind) == (1, EventKind.IMPORTED)
    assert [(c.id, c.name, c.type, c.version, c.value) for c in event.changes] == [
        (v.id, v.name, "integer", v.version, None) for v in sent
    ]
