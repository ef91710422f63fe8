"""A Redis crash loses no acknowledged write when Redis is configured to fsync every write."""

from __future__ import annotations

import grpc
import pytest

from bridge_server.testing import wait_until
from tests.integration.helpers import create_session, register_int, set_int
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

# The durable profile of deploy/redis.conf.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


@pytest.mark.real_redis
def test_acknowledged_writes_survive_a_redis_crash(redis_process_factory, frontend_factory, session_id):
    redis = redis_process_factory(*DURABLE)
    frontend = frontend_factory(redis_url=redis.url)
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        register_int(stub, session_id, "counter")
        acknowledged = [set_int(stub, session_id, "counter", n).version for n in range(1, 51)]

        redis.crash()
        redis.start()

        def read() -> pb.Variable | None:
            try:
                return stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="counter"))
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                return None

        wait_until(lambda: read() is not None, "the frontend to reach the restarted Redis")
        survivor = read()
        session = stub.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert acknowledged[-1] == 50
    assert survivor is not None
    assert (survivor.value.integer_value, survivor.version) == (50, 50)
    assert session.revision == 51  # the registration and fifty updates, none lost
