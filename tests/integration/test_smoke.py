"""The frontend answers over real gRPC, backed by a real Redis."""

from unified_bridge.proto import unified_bridge_pb2 as pb


def test_register_then_get_round_trips_through_redis(stub, session_id):
    stub.CreateSession(pb.CreateSessionRequest(session_id=session_id))
    registered = stub.RegisterVariable(
        pb.RegisterVariableRequest(
            session_id=session_id,
            name="temperature",
            type=pb.VARIABLE_TYPE_FLOAT,
            value=pb.Value(float_value=0.7),
            constraints=pb.Constraints(min=0, max=2),
        )
    )
    fetched = stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="temperature"))
    assert registered.variable.id.startswith("var_temperature_")
    assert fetched.value.float_value == 0.7
    assert fetched.version == 0
