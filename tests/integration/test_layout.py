"""The storage layout in a real Redis: one record per variable, names mapped to their ids' last digits,
and keys of another layout never read as this one's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bridge_server.keys import LAYOUT, session_keys
from bridge_server.records import decode_record
from tests.integration.helpers import create_session, get, register, set_value
from unified_bridge.proto import unified_bridge_pb2 as pb

pytestmark = pytest.mark.real_redis


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_a_variable_is_one_record_and_one_name(stub, session_id, redis_client):
    create_session(stub, session_id)
    registered = register(
        stub, session_id, "t", pb.VARIABLE_TYPE_FLOAT, pb.Value(float_value=0.5), pb.Constraints(min=0, max=2)
    )
    set_value(stub, session_id, "t", pb.Value(float_value=0.7))
    keys = session_keys("ub", session_id)
    records = redis_client.hgetall(keys.vars)
    assert list(records) == [registered.id.encode()]
    record = decode_record(records[registered.id.encode()])
    assert (record.version, record.type) == (1, "float")
    assert redis_client.hgetall(keys.names) == {b"t": registered.id[-8:].encode()}
    assert get(stub, session_id, registered.id).value.float_value == 0.7


def test_keys_of_another_layout_are_not_read(stub, session_id, redis_client):
    """A session written by a version before layout 2 stays where it is, for that version to export;
    this one neither reads it nor lists it."""
    assert LAYOUT == "2"
    old = f"ub:{{{session_id}}}"
    redis_client.hset(f"{old}:session", mapping={"created_at": 1, "last_active": 1, "ttl": 60, "revision": 3})
    redis_client.hset(f"{old}:vars", mapping={"d:var_x_00000000": b"\x80", "v:var_x_00000000": b"\x01"})
    redis_client.hset(f"{old}:names", "x", "var_x_00000000")
    try:
        assert session_id not in _every_session(stub)
        created = stub.CreateSession(pb.CreateSessionRequest(session_id=session_id))
        assert created.created  # a new, empty session of this layout
        assert (created.session.revision, created.session.variable_count) == (0, 0)
        assert session_id in _every_session(stub)
        assert redis_client.hget(f"{old}:session", "revision") == b"3"  # the old one untouched
    finally:
        redis_client.delete(f"{old}:session", f"{old}:vars", f"{old}:names")


def _every_session(stub) -> set[str]:
    found: set[str] = set()
    token = ""
    while True:
        page = stub.ListSessions(pb.ListSessionsRequest(page_size=1000, page_token=token))
        found.update(page.session_ids)
        token = page.next_page_token
        if not token:
            return found
