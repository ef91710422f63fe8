"""Reads and watchers keep a session alive without turning every read or idle check into a write."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import redis

from bridge_server.testing import wait_until
from tests.integration.helpers import EventReader, create_session, register_int
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


@contextlib.contextmanager
def _on_a_private_redis(
    redis_process_factory, frontend_factory, session_id: str, **settings: Any
) -> Iterator[tuple[pb_grpc.UnifiedBridgeStub, redis.Redis]]:
    """A stub on a frontend (started with ``settings``) whose Redis no other test uses, so its command
    counts are this test's, a client on that Redis, and the session created."""
    redis_server = redis_process_factory()
    frontend = frontend_factory(redis_url=redis_server.url, **settings)
    with grpc.insecure_channel(frontend.target) as channel, redis.Redis.from_url(redis_server.url) as client:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        yield stub, client


@contextlib.contextmanager
def _short_lived_session(
    frontend_factory, session_id: str, **settings: Any
) -> Iterator[pb_grpc.UnifiedBridgeStub]:
    """A stub on a frontend (started with ``settings``) and a session created with a 2 s TTL."""
    frontend = frontend_factory(**settings)
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id, ttl_seconds=2)
        yield stub


def _calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{command}")
    return int(stats["calls"]) if stats else 0


@pytest.mark.real_redis
def test_repeated_reads_and_writes_refresh_nothing_until_a_refresh_is_due(
    redis_process_factory, frontend_factory, session_id
):
    with _on_a_private_redis(
        redis_process_factory, frontend_factory, session_id, watch_idle_check_seconds=3600
    ) as (stub, client):
        register_int(stub, session_id, "x")
        client.config_resetstat()
        for _ in range(50):
            stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="x"))
        # Creating the session just refreshed its TTL (and told the frontend what it is).
        assert (_calls(client, "expire"), _calls(client, "hset")) == (0, 0)
        for value in range(1, 51):
            stub.SetVariable(
                pb.SetVariableRequest(
                    session_id=session_id, name_or_id="x", value=pb.Value(integer_value=value)
                )
            )
        # Commands inside scripts are counted: each write is one HSET (its record), no refresh.
        assert (_calls(client, "expire"), _calls(client, "hset")) == (0, 50)
        assert stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="x")).version == 50


def test_writes_alone_keep_a_short_lived_session_alive(frontend_factory, session_id):
    with _short_lived_session(frontend_factory, session_id) as stub:
        register_int(stub, session_id, "x")
        deadline, value = time.monotonic() + 3.5, 0  # well past the 2 s TTL
        while time.monotonic() < deadline:
            value += 1
            stub.SetVariable(
                pb.SetVariableRequest(
                    session_id=session_id, name_or_id="x", value=pb.Value(integer_value=value)
                )
            )
            time.sleep(0.1)
        assert stub.GetSession(pb.GetSessionRequest(session_id=session_id)).variable_count == 1


def test_reads_alone_keep_a_short_lived_session_alive(frontend_factory, session_id):
    with _short_lived_session(frontend_factory, session_id) as stub:
        register_int(stub, session_id, "x")
        deadline = time.monotonic() + 3.5  # well past the 2 s TTL
        while time.monotonic() < deadline:
            stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="x"))
            time.sleep(0.1)
        assert stub.GetSession(pb.GetSessionRequest(session_id=session_id)).variable_count == 1


@pytest.mark.real_redis
def test_an_idle_watchers_checks_write_nothing_until_a_refresh_is_due(
    redis_process_factory, frontend_factory, session_id
):
    settings = {"watch_idle_check_seconds": 0.05, "activity_refresh_seconds": 3600}
    with _on_a_private_redis(redis_process_factory, frontend_factory, session_id, **settings) as (
        stub,
        client,
    ):
        reader = EventReader(stub, session_id)
        try:
            reader.until_caught_up()
            client.config_resetstat()
            wait_until(lambda: _calls(client, "evalsha") >= 20, "twenty idle checks", timeout=30)
            assert (_calls(client, "expire"), _calls(client, "hset")) == (0, 0)
        finally:
            reader.close()


def test_a_watcher_alone_keeps_a_short_lived_session_alive(frontend_factory, session_id):
    with _short_lived_session(frontend_factory, session_id, watch_idle_check_seconds=0.2) as stub:
        reader = EventReader(stub, session_id)
        try:
            reader.until_caught_up()
            time.sleep(3.5)  # well past the 2 s TTL, with no call but the watch
            assert stub.GetSession(pb.GetSessionRequest(session_id=session_id)).session_id == session_id
        finally:
            reader.close()


@pytest.mark.real_redis
def test_the_watchers_of_a_quiet_session_check_it_with_one_read(
    redis_process_factory, frontend_factory, session_id
):
    """Ten watchers of one quiet session: each idle check is one script call, not ten."""
    with _on_a_private_redis(
        redis_process_factory, frontend_factory, session_id, watch_idle_check_seconds=0.1
    ) as (stub, client):
        readers = [EventReader(stub, session_id) for _ in range(10)]
        try:
            for reader in readers:
                reader.until_caught_up()
            started = time.monotonic()
            client.config_resetstat()
            wait_until(lambda: _calls(client, "evalsha") >= 3, "three idle checks", timeout=30)
            calls, elapsed = _calls(client, "evalsha"), time.monotonic() - started
            # At most one shared check per interval; a check per watcher would be ten per interval.
            assert calls <= elapsed / 0.1 + 2
        finally:
            for reader in readers:
                reader.close()
