"""Redis in each state it can be put in, and what a caller is told: one table, by exception class
(bridge_server.errors), with a real Redis in that state where one can be made."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import grpc
import pytest
import redis
from redis import exceptions as redis_errors

from bridge_server.errors import status_for
from bridge_server.testing import wait_until
from tests.integration.helpers import create_session, register_int, rpc_error
from unified_bridge import LimitExceededError, VersionConflictError, connect
from unified_bridge.errors import BridgeUnavailableError
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            redis_errors.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
            "RESOURCE_EXHAUSTED",
        ),
        (redis_errors.ReadOnlyError("You can't write against a read only replica."), "UNAVAILABLE"),
        (redis_errors.MasterDownError("Link with MASTER is down"), "UNAVAILABLE"),
        (redis_errors.BusyLoadingError("Redis is loading the dataset in memory"), "UNAVAILABLE"),
        (redis_errors.ClusterDownError("The cluster is down"), "UNAVAILABLE"),
        (redis_errors.TryAgainError("Multiple keys request during rehashing of slot"), "UNAVAILABLE"),
        (redis_errors.TimeoutError("Timeout reading from socket"), "UNAVAILABLE"),
        (redis_errors.ConnectionError("Connection refused"), "UNAVAILABLE"),
        (redis_errors.AuthenticationError("invalid password"), "UNAVAILABLE"),
        (redis_errors.NoPermissionError("this user has no permissions"), "UNAVAILABLE"),
        (redis_errors.ResponseError("BUSY Redis is busy running a script."), "UNAVAILABLE"),
        (redis_errors.ResponseError("ERR something this project did wrong"), "INTERNAL"),
        (KeyError("a bug"), "INTERNAL"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else value,
)
def test_the_table(error: Exception, code: str) -> None:
    status = status_for(error)
    assert status.code.name == code
    if code == "INTERNAL":
        assert status.error_class is None
    else:
        assert status.error_class is (
            LimitExceededError if code == "RESOURCE_EXHAUSTED" else BridgeUnavailableError
        )


def _stub_on(frontend: Any) -> tuple[grpc.Channel, pb_grpc.UnifiedBridgeStub]:
    channel = grpc.insecure_channel(frontend.target)
    return channel, pb_grpc.UnifiedBridgeStub(channel)


def _set(stub: pb_grpc.UnifiedBridgeStub, session_id: str, value: int) -> pb.SetVariableRequest:
    return pb.SetVariableRequest(session_id=session_id, name_or_id="n", value=pb.Value(integer_value=value))


@pytest.mark.real_redis
def test_a_full_redis_is_resource_exhausted(redis_process_factory, frontend_factory, session_id: str) -> None:
    server = redis_process_factory("--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
    frontend = frontend_factory(redis_url=server.url)
    channel, stub = _stub_on(frontend)
    with channel, redis.Redis.from_url(server.url) as direct:
        create_session(stub, session_id)
        register_int(stub, session_id, "n")
        _fill(direct)
        error = rpc_error(stub.SetVariable, _set(stub, session_id, 1))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "storage is full" in (error.details() or "")
        # Reads go on.
        got = stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="n"))
        assert got.version == 0
        # Deletes go on too, so an operator can make room through the API (scripts flagged allow-oom).
        stub.DeleteVariable(pb.DeleteVariableRequest(session_id=session_id, name_or_id="n"), timeout=10)
        deleted = stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id), timeout=10)
        assert deleted.deleted


def _fill(direct: redis.Redis) -> None:
    """Write until Redis refuses even a small write: it is above its maxmemory now. (A refused large
    write frees its request buffer and may leave Redis just below the limit, hence the small ones.)"""
    for size in (256 * 1024, 1024, 16):
        for i in range(10_000):
            try:
                direct.set(f"filler:{size}:{i}", b"x" * size)
            except redis_errors.OutOfMemoryError:
                break
        else:
            raise AssertionError("Redis never filled up")


@pytest.mark.real_redis
def test_a_read_only_replica_is_unavailable(redis_process_factory, frontend_factory, session_id: str) -> None:
    primary = redis_process_factory()
    replica = redis_process_factory("--replicaof", "127.0.0.1", str(primary.port))
    frontend = frontend_factory(redis_url=replica.url)
    channel, stub = _stub_on(frontend)
    with channel:
        error = rpc_error(stub.CreateSession, pb.CreateSessionRequest(session_id=session_id))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "read-only replica" in (error.details() or "")


@pytest.mark.real_redis
def test_scripts_flushed_from_redis_are_loaded_again(redis_process_factory, frontend_factory, session_id):
    server = redis_process_factory()
    frontend = frontend_factory(redis_url=server.url)
    channel, stub = _stub_on(frontend)
    with channel, redis.Redis.from_url(server.url) as direct:
        create_session(stub, session_id)
        register_int(stub, session_id, "n")
        direct.script_flush()  # as after a restart without persistence of scripts, or a failover
        assert stub.SetVariable(_set(stub, session_id, 5)).version == 1
        assert (
            stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="n")).value.integer_value
            == 5
        )
        script_loads = direct.info("commandstats")["cmdstat_script|load"]["calls"]
        stub.SetVariable(_set(stub, session_id, 6))
        assert direct.info("commandstats")["cmdstat_script|load"]["calls"] == script_loads  # loaded once


@pytest.mark.real_redis
def test_with_its_replica_gone_a_refused_write_is_refused_and_an_applied_one_unknown(
    redis_process_factory, frontend_factory, session_id
):
    primary = redis_process_factory()
    replica = redis_process_factory("--replicaof", "127.0.0.1", str(primary.port))
    frontend = frontend_factory(redis_url=primary.url, redis_wait_replicas=1, redis_wait_timeout_ms=300)
    channel, stub = _stub_on(frontend)
    with channel, redis.Redis.from_url(primary.url) as direct:
        wait_until(
            lambda: direct.info("replication").get("slave0", {}).get("state") == "online",
            "the replica to be in sync",
        )
        create_session(stub, session_id)
        register_int(stub, session_id, "n")
        replica.crash()
        wait_until(lambda: direct.info("replication")["connected_slaves"] == 0, "the primary to see it go")

        stale = _set(stub, session_id, 5)
        stale.expected_version = 7
        refused = rpc_error(stub.SetVariable, stale)  # the script refused it: nothing to replicate
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        applied = rpc_error(stub.SetVariable, _set(stub, session_id, 6))
        assert applied.code() == grpc.StatusCode.UNAVAILABLE
        assert "the master has it" in (applied.details() or "")


@pytest.mark.real_redis
def test_a_busy_script_is_unavailable(redis_process_factory, frontend_factory, session_id: str) -> None:
    server = redis_process_factory("--busy-reply-threshold", "50")
    frontend = frontend_factory(redis_url=server.url)
    channel, stub = _stub_on(frontend)
    with channel, redis.Redis.from_url(server.url) as direct:
        create_session(stub, session_id)
        running = threading.Thread(target=_run_forever, args=(server.url,))
        running.start()
        try:
            _wait_busy(direct)
            error = rpc_error(stub.GetSession, pb.GetSessionRequest(session_id=session_id))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert "busy running a script" in (error.details() or "")
        finally:
            _kill_script(server.url)
            running.join(30)


@pytest.mark.real_redis
def test_a_stalled_redis_is_unavailable(redis_process_factory, frontend_factory, session_id: str) -> None:
    server = redis_process_factory("--enable-debug-command", "yes")
    frontend = frontend_factory(redis_url=server.url, redis_timeout_seconds=0.3)
    channel, stub = _stub_on(frontend)
    with channel:
        create_session(stub, session_id)
        sleeper = threading.Thread(target=_debug_sleep, args=(server.url, 2))
        sleeper.start()
        try:
            _wait_busy_sleeping(server.url)
            error = rpc_error(stub.GetSession, pb.GetSessionRequest(session_id=session_id))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert "did not answer in time" in (error.details() or "")
        finally:
            sleeper.join(30)


def _run_forever(url: str) -> None:
    with redis.Redis.from_url(url) as client, contextlib.suppress(redis_errors.ResponseError):
        client.eval("while true do end", 0)  # until the test kills it


def _debug_sleep(url: str, seconds: int) -> None:
    with redis.Redis.from_url(url) as client:
        client.execute_command("DEBUG", "SLEEP", seconds)


def _wait_busy(direct: redis.Redis) -> None:
    for _ in range(2000):
        try:
            direct.ping()
        except redis_errors.ResponseError as exc:
            if str(exc).startswith("BUSY"):
                return
        threading.Event().wait(0.005)
    raise AssertionError("Redis never became busy")


def _wait_busy_sleeping(url: str) -> None:
    # DEBUG SLEEP blocks every client: a PING with a short timeout tells when it has started.
    with redis.Redis.from_url(url, socket_timeout=0.05) as probe:
        for _ in range(400):
            try:
                probe.ping()
            except redis_errors.TimeoutError:
                return
            threading.Event().wait(0.005)
    raise AssertionError("DEBUG SLEEP never started")


def _kill_script(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        for _ in range(200):
            try:
                client.script_kill()
                return
            except redis_errors.ResponseError:
                threading.Event().wait(0.01)


def test_a_compare_and_set_conflict_says_the_current_version(frontend, session_id: str) -> None:
    with connect(frontend.target) as client, client.session(session_id) as ctx:
        ctx["n"] = 0
        ctx["n"] = 1
        ctx["n"] = 2
        with pytest.raises(VersionConflictError) as conflict:
            ctx.update_variable("n", 9, expected_version=0)
        assert conflict.value.current_version == 2
        assert "expected version 0, found 2" in str(conflict.value)


def test_a_registration_brings_the_context_revision(frontend, session_id: str) -> None:
    with connect(frontend.target) as client, client.session(session_id, cache=False) as ctx:
        ctx.register_variable("a", "integer", 1)
        assert ctx.revision == 1
        ctx.register_variable("a", "integer", 1)  # the same again: nothing written, revision as is
        assert ctx.revision == 1
        ctx.register_variable("b", "integer", 1)
        assert ctx.revision == 2


@pytest.mark.real_redis
def test_a_redis_that_may_evict_keys_is_refused(
    redis_process_factory, frontend_factory, session_id: str
) -> None:
    """allkeys-lru evicted half of a session's keys (variables without definitions): with an evicting
    policy the frontend refuses to serve, and serves again once the policy is noeviction."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from bridge_server.testing import wait_until

    server = redis_process_factory("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    frontend = frontend_factory(redis_url=server.url, health_check_interval_seconds=0.05)
    channel, stub = _stub_on(frontend)
    health = health_pb2_grpc.HealthStub(channel)

    def readiness() -> int:
        return health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=5).status

    with channel, redis.Redis.from_url(server.url) as direct:
        assert readiness() == health_pb2.HealthCheckResponse.NOT_SERVING
        error = rpc_error(stub.CreateSession, pb.CreateSessionRequest(session_id=session_id))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "maxmemory-policy allkeys-lru" in (error.details() or "")
        direct.config_set("maxmemory-policy", "noeviction")
        wait_until(lambda: readiness() == health_pb2.HealthCheckResponse.SERVING, "serving again")
        create_session(stub, session_id)


@pytest.mark.real_redis
def test_a_watch_opened_while_redis_stalls_fails_in_time(
    redis_process_factory, frontend_factory, session_id: str
) -> None:
    """A watch opened during DEBUG SLEEP used to wait as long as Redis slept; it now ends UNAVAILABLE
    within --redis-timeout-seconds (the call's own deadline is longer: it never fires)."""
    server = redis_process_factory("--enable-debug-command", "yes")
    frontend = frontend_factory(redis_url=server.url, redis_timeout_seconds=0.3)
    channel, stub = _stub_on(frontend)
    with channel:
        create_session(stub, session_id)
        sleeper = threading.Thread(target=_debug_sleep, args=(server.url, 3))
        sleeper.start()
        try:
            _wait_busy_sleeping(server.url)
            call = stub.WatchSession(pb.WatchSessionRequest(session_id=session_id), timeout=2.5)
            with pytest.raises(grpc.RpcError) as failed:
                next(call)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
        finally:
            sleeper.join(30)
