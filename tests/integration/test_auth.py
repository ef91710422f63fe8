"""Bearer-token authentication: every UnifiedBridge call needs a token; health stays open."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.helpers import EventReader, assert_status, rpc_error
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

DENIED = "missing or invalid token: send the metadata 'authorization: Bearer <token>'"


@pytest.fixture
def guarded(frontend_factory):
    """A frontend that accepts two tokens (an old and a new one, as during a rotation)."""
    return frontend_factory(auth_tokens="old-token, new-token")


def _create(stub, session_id, token=None):
    metadata = [("authorization", f"Bearer {token}")] if token else None
    return stub.CreateSession(pb.CreateSessionRequest(session_id=session_id), metadata=metadata)


def test_calls_without_a_valid_token_are_unauthenticated(guarded, session_id):
    with grpc.insecure_channel(guarded.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        for token in (None, "wrong", "old-token-but-longer"):
            with pytest.raises(grpc.RpcError) as info:
                _create(stub, session_id, token)
            assert_status(info.value, grpc.StatusCode.UNAUTHENTICATED, DENIED)
        error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=session_id, name_or_id="x"))
        assert_status(error, grpc.StatusCode.UNAUTHENTICATED, DENIED)
        with pytest.raises(grpc.RpcError) as info:
            EventReader(stub, session_id).next()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The refused calls created nothing: with a token, the session is created now.
        assert _create(stub, session_id, "new-token").created


def test_either_token_of_a_rotation_is_accepted(guarded, session_id):
    with grpc.insecure_channel(guarded.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        assert _create(stub, session_id, "old-token").created
        assert not _create(stub, session_id, "new-token").created


def test_health_needs_no_token(guarded):
    with grpc.insecure_channel(guarded.target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
