"""Frontends are stateless: several share one Redis; health follows Redis; shutdown is graceful."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bridge_server.health import SERVICE_NAME
from bridge_server.testing import wait_until
from tests.integration.helpers import EventReader, create_session, register_int, set_int
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


def test_write_through_one_frontend_is_read_and_watched_through_another(frontend_factory, session_id):
    first, second = frontend_factory(), frontend_factory()
    with grpc.insecure_channel(first.target) as one, grpc.insecure_channel(second.target) as two:
        stub_one, stub_two = pb_grpc.UnifiedBridgeStub(one), pb_grpc.UnifiedBridgeStub(two)
        create_session(stub_one, session_id)
        register_int(stub_one, session_id, "x")
        reader = EventReader(stub_two, session_id, from_now=True)
        try:
            reader.until_caught_up()
            set_int(stub_one, session_id, "x", 41)
            read = stub_two.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="x"))
            event = reader.next()
        finally:
            reader.close()
    assert read.value.integer_value == 41
    assert event is not None
    assert event.changes[0].value.integer_value == 41


def test_killed_frontend_process_loses_no_acknowledged_write(frontend_process_factory, stub, session_id):
    doomed = frontend_process_factory()
    with grpc.insecure_channel(doomed.target) as channel:
        doomed_stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(doomed_stub, session_id)
        register_int(doomed_stub, session_id, "x")
        acknowledged = [set_int(doomed_stub, session_id, "x", value).version for value in range(1, 21)]
    doomed.kill()
    survivor = stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="x"))
    assert acknowledged == list(range(1, 21))
    assert (survivor.value.integer_value, survivor.version) == (20, 20)


def _health(target: str, service: str = SERVICE_NAME) -> int:
    with grpc.insecure_channel(target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return int(response.status)


@pytest.mark.real_redis
def test_health_follows_redis_down_and_back_without_restart(
    redis_process_factory, frontend_factory, session_id
):
    redis = redis_process_factory()
    frontend = frontend_factory(
        redis_url=redis.url, health_check_interval_seconds=0.1, redis_timeout_seconds=0.5
    )
    assert _health(frontend.target) == health_pb2.HealthCheckResponse.SERVING
    assert _health(frontend.target, "") == health_pb2.HealthCheckResponse.SERVING

    redis.stop()
    wait_until(
        lambda: _health(frontend.target) == health_pb2.HealthCheckResponse.NOT_SERVING, "health NOT_SERVING"
    )
    # Not ready, but alive: a liveness probe must not restart a frontend because Redis is away.
    assert _health(frontend.target, "readiness") == health_pb2.HealthCheckResponse.NOT_SERVING
    assert _health(frontend.target, "") == health_pb2.HealthCheckResponse.SERVING
    assert _health(frontend.target, "liveness") == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(frontend.target) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.UnifiedBridgeStub(channel).CreateSession(
            pb.CreateSessionRequest(session_id=session_id), timeout=10
        )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE

    redis.start()
    wait_until(lambda: _health(frontend.target) == health_pb2.HealthCheckResponse.SERVING, "health SERVING")
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)

        def creates() -> bool:
            try:
                return bool(stub.CreateSession(pb.CreateSessionRequest(session_id=session_id)).created)
            except grpc.RpcError:  # a pooled connection from before the outage fails once
                return False

        wait_until(creates, "a session created after Redis came back")


@pytest.mark.real_redis
def test_watch_stream_survives_a_redis_restart_without_losing_events(
    redis_process_factory, frontend_factory, session_id
):
    redis = redis_process_factory()
    frontend = frontend_factory(redis_url=redis.url, watch_idle_check_seconds=0.2)
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        register_int(stub, session_id, "x")
        reader = EventReader(stub, session_id, from_now=True)
        try:
            reader.until_caught_up()
            # Redis keeps nothing on disk here, so a restart loses the session; the watcher must
            # hear about it rather than wait forever.
            redis.stop()
            redis.start()
            event = reader.next(timeout=30)
        finally:
            reader.close()
    assert event is not None
    assert event.kind == pb.EVENT_KIND_SESSION_DELETED


def test_graceful_shutdown_ends_watch_streams_cleanly(frontend_factory, session_id):
    frontend = frontend_factory()
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        reader = EventReader(stub, session_id)
        reader.until_caught_up()
        frontend.stop(grace=5)
        assert reader.next() is None  # ended with OK, not an error


def test_sigterm_stops_a_frontend_process_cleanly(frontend_process_factory, session_id):
    process = frontend_process_factory()
    with grpc.insecure_channel(process.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        reader = EventReader(stub, session_id)
        reader.until_caught_up()
        assert process.terminate() == 0
        assert reader.next() is None
    assert any("frontend stopped" in line for line in process.log)


def test_reflection_lists_the_service(frontend):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(frontend.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {
            service.name for response in responses for service in response.list_services_response.service
        }
    assert SERVICE_NAME in names
