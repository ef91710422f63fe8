"""Session lifecycle through real gRPC against real Redis: create, get, heartbeat, delete, list, expiry."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import redis

from bridge_server.keys import session_keys
from bridge_server.testing import wait_until
from tests.integration.helpers import (
    assert_status,
    create_session,
    register,
    rpc_error,
    session_redis_keys,
    set_value,
)
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_create_without_id_picks_a_fresh_id(stub):
    first = stub.CreateSession(pb.CreateSessionRequest())
    second = stub.CreateSession(pb.CreateSessionRequest())
    assert first.created
    assert second.created
    assert first.session.session_id
    assert first.session.session_id != second.session.session_id
    fetched = stub.GetSession(pb.GetSessionRequest(session_id=first.session.session_id))
    assert fetched.session_id == first.session.session_id


def test_create_with_id_is_idempotent_and_keeps_the_first_settings(stub, session_id):
    first = stub.CreateSession(
        pb.CreateSessionRequest(session_id=session_id, ttl_seconds=120, metadata={"owner": "alice"})
    )
    again = stub.CreateSession(
        pb.CreateSessionRequest(session_id=session_id, ttl_seconds=300, metadata={"owner": "bob"})
    )
    assert first.created
    assert not again.created
    assert again.session.session_id == session_id
    assert again.session.created_at == first.session.created_at
    assert again.session.ttl_seconds == 120
    assert dict(again.session.metadata) == {"owner": "alice"}


def test_create_reports_ttl_metadata_and_an_empty_start(stub, session_id):
    session = create_session(stub, session_id, ttl_seconds=90, metadata={"team": "opt", "run": "7"})
    assert session.ttl_seconds == 90
    assert dict(session.metadata) == {"team": "opt", "run": "7"}
    assert session.variable_count == 0
    assert session.revision == 0
    assert session.created_at == session.last_active


def test_ttl_zero_means_the_server_default(stub, session_id, frontend):
    session = create_session(stub, session_id)
    assert session.ttl_seconds == frontend.server.settings.default_ttl_seconds


def test_default_ttl_comes_from_the_frontend_settings(frontend_factory, session_id):
    server = frontend_factory(default_ttl_seconds=42)
    with grpc.insecure_channel(server.target) as channel:
        session = create_session(pb_grpc.UnifiedBridgeStub(channel), session_id)
    assert session.ttl_seconds == 42


def test_every_key_carries_the_session_ttl(stub, session_id, redis_client):
    create_session(stub, session_id, ttl_seconds=100)
    register(stub, session_id, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    keys = session_redis_keys(redis_client, session_id)
    assert {key.decode().rsplit(":", 1)[1] for key in keys} == {"session", "vars", "names", "log"}
    for key in keys:
        assert 0 < redis_client.ttl(key) <= 100


def test_get_counts_variables_and_revision(stub, session_id):
    create_session(stub, session_id)
    register(stub, session_id, "a", pb.VARIABLE_TYPE_FLOAT, pb.Value(float_value=1.0))
    register(stub, session_id, "b", pb.VARIABLE_TYPE_STRING, pb.Value(string_value="x"))
    set_value(stub, session_id, "a", pb.Value(float_value=2.0))
    session = stub.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert session.variable_count == 2
    assert session.revision == 3
    stub.DeleteVariable(pb.DeleteVariableRequest(session_id=session_id, name_or_id="b"))
    session = stub.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert session.variable_count == 1
    assert session.revision == 4


def test_reads_do_not_change_the_revision(stub, session_id):
    create_session(stub, session_id)
    register(stub, session_id, "a", pb.VARIABLE_TYPE_BOOLEAN, pb.Value(bool_value=True))
    stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="a"))
    stub.ListVariables(pb.ListVariablesRequest(session_id=session_id))
    stub.Heartbeat(pb.HeartbeatRequest(session_id=session_id))
    assert stub.GetSession(pb.GetSessionRequest(session_id=session_id)).revision == 1


def test_heartbeat_refreshes_the_ttl_of_every_key(stub, session_id, redis_client):
    create_session(stub, session_id, ttl_seconds=500)
    register(stub, session_id, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    keys = session_redis_keys(redis_client, session_id)
    for key in keys:
        redis_client.expire(key, 5)
    before = stub.GetSession(pb.GetSessionRequest(session_id=session_id)).last_active
    beat = stub.Heartbeat(pb.HeartbeatRequest(session_id=session_id))
    assert beat.session_id == session_id
    assert beat.ttl_seconds == 500
    assert beat.last_active.ToMilliseconds() >= before.ToMilliseconds()
    for key in keys:
        assert redis_client.ttl(key) > 5


def test_heartbeat_of_unknown_session_is_not_found(stub, session_id):
    error = rpc_error(stub.Heartbeat, pb.HeartbeatRequest(session_id=session_id))
    assert_status(error, grpc.StatusCode.NOT_FOUND, f"Session not found: {session_id}")


def test_delete_removes_the_session_whole(stub, session_id, redis_client):
    create_session(stub, session_id)
    register(stub, session_id, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    assert stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id)).deleted
    assert session_redis_keys(redis_client, session_id) == []
    error = rpc_error(stub.GetSession, pb.GetSessionRequest(session_id=session_id))
    assert_status(error, grpc.StatusCode.NOT_FOUND, f"Session not found: {session_id}")
    error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=session_id, name_or_id="x"))
    assert_status(error, grpc.StatusCode.NOT_FOUND, f"Session not found: {session_id}")


def test_delete_of_unknown_session_reports_nothing_deleted(stub, session_id):
    assert not stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id)).deleted


def test_a_deleted_session_can_be_created_again_empty(stub, session_id):
    create_session(stub, session_id)
    register(stub, session_id, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id))
    again = stub.CreateSession(pb.CreateSessionRequest(session_id=session_id))
    assert again.created
    assert again.session.variable_count == 0
    assert again.session.revision == 0
    error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=session_id, name_or_id="x"))
    assert_status(error, grpc.StatusCode.NOT_FOUND, "Variable not found: x")


def _all_session_ids(stub, page_size: int) -> list[str]:
    found: list[str] = []
    token = ""
    for _ in range(100_000):
        page = stub.ListSessions(pb.ListSessionsRequest(page_size=page_size, page_token=token))
        found.extend(page.session_ids)
        token = page.next_page_token
        if not token:
            return found
    raise AssertionError("ListSessions never returned an empty page token")


def test_list_sessions_pages_through_every_session(stub, session_id):
    mine = [f"{session_id}_{i}" for i in range(5)]
    for sid in mine:
        create_session(stub, sid)
    listed = _all_session_ids(stub, page_size=3)
    assert set(mine) <= set(listed)
    stub.DeleteSession(pb.DeleteSessionRequest(session_id=mine[0]))
    assert mine[0] not in _all_session_ids(stub, page_size=0)


def test_list_sessions_rejects_a_bad_page_token(stub):
    error = rpc_error(stub.ListSessions, pb.ListSessionsRequest(page_token="not-a-token"))
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT)
    assert "page token" in error.details()


@pytest.mark.real_redis
def test_an_expired_session_is_gone_whole(stub, session_id, redis_client):
    create_session(stub, session_id, ttl_seconds=1)
    register(stub, session_id, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    set_value(stub, session_id, "x", pb.Value(integer_value=2))
    assert len(session_redis_keys(redis_client, session_id)) == 4
    # Every gRPC read refreshes the TTL, so poll Redis itself (EXISTS also expires lazily).
    stored = session_keys("ub", session_id).stored
    wait_until(
        lambda: redis_client.exists(*stored) == 0,
        "the session's keys to expire",
    )
    assert session_redis_keys(redis_client, session_id) == []
    error = rpc_error(stub.GetSession, pb.GetSessionRequest(session_id=session_id))
    assert_status(error, grpc.StatusCode.NOT_FOUND, f"Session not found: {session_id}")
    error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=session_id, name_or_id="x"))
    assert_status(error, grpc.StatusCode.NOT_FOUND, f"Session not found: {session_id}")
    # Nothing was recreated by those reads.
    assert session_redis_keys(redis_client, session_id) == []


def test_a_session_polled_over_grpc_until_expired_is_not_found(frontend_factory, session_id, redis_client):
    """Without touching Redis directly: a frontend whose only traffic is on other sessions."""
    server = frontend_factory()
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id, ttl_seconds=1)
        register(stub, session_id, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
        # ListSessions reads no session, so it refreshes none: poll it until the session is gone.
        wait_until(lambda: session_id not in _all_session_ids(stub, 1000), "the session to expire")
        error = rpc_error(stub.GetSession, pb.GetSessionRequest(session_id=session_id))
        assert_status(error, grpc.StatusCode.NOT_FOUND, f"Session not found: {session_id}")
    assert session_redis_keys(redis_client, session_id) == []
