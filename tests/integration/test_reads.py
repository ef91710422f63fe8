"""A frontend that has resolved a name reads it with one HMGET; what other frontends do meanwhile
(delete, register again, delete the session, import it anew) is still seen on the next read."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tests.integration.helpers import (
    assert_status,
    create_session,
    get,
    register,
    register_int,
    rpc_error,
    set_value,
)
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


@pytest.fixture(params=[16 * 1024 * 1024, 0], ids=["read cache", "no read cache"])
def pair(
    frontend_factory, request: pytest.FixtureRequest
) -> Iterator[tuple[pb_grpc.UnifiedBridgeStub, pb_grpc.UnifiedBridgeStub]]:
    """A reader frontend (keeping what it read, or not) and a writer frontend on the same Redis."""
    reader, writer = frontend_factory(read_cache_bytes=request.param), frontend_factory()
    with grpc.insecure_channel(reader.target) as first, grpc.insecure_channel(writer.target) as second:
        yield pb_grpc.UnifiedBridgeStub(first), pb_grpc.UnifiedBridgeStub(second)


def test_reads_follow_writes_made_elsewhere(pair, session_id):
    reader, writer = pair
    create_session(writer, session_id)
    register_int(writer, session_id, "x", 1)
    assert get(reader, session_id, "x").value.integer_value == 1  # resolves the name
    for value in range(2, 6):
        set_value(writer, session_id, "x", pb.Value(integer_value=value))
        read = get(reader, session_id, "x")
        assert (read.value.integer_value, read.version) == (value, value - 1)
        again = get(reader, session_id, "x")  # unchanged: the same answer, however it was made
        assert again == read
        many = reader.GetVariables(pb.GetVariablesRequest(session_id=session_id, names_or_ids=["x", "x"]))
        assert list(many.variables) == [read, read]


def test_a_name_deleted_and_registered_again_elsewhere_reads_as_the_new_variable(pair, session_id):
    reader, writer = pair
    create_session(writer, session_id)
    first = register_int(writer, session_id, "x", 1)
    assert get(reader, session_id, "x").id == first.id
    writer.DeleteVariable(pb.DeleteVariableRequest(session_id=session_id, name_or_id="x"))
    assert_status(
        rpc_error(reader.GetVariable, pb.GetVariableRequest(session_id=session_id, name_or_id="x")),
        grpc.StatusCode.NOT_FOUND,
    )
    second = register(writer, session_id, "x", pb.VARIABLE_TYPE_STRING, pb.Value(string_value="s"))
    read = get(reader, session_id, "x")
    assert (read.id, read.type, read.value.string_value) == (second.id, pb.VARIABLE_TYPE_STRING, "s")


def test_a_session_deleted_elsewhere_is_not_found(pair, session_id):
    reader, writer = pair
    create_session(writer, session_id)
    register_int(writer, session_id, "x", 1)
    get(reader, session_id, "x")
    writer.DeleteSession(pb.DeleteSessionRequest(session_id=session_id))
    error = rpc_error(reader.GetVariable, pb.GetVariableRequest(session_id=session_id, name_or_id="x"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_a_session_imported_anew_with_the_same_ids_reads_its_new_definitions(pair, session_id):
    reader, writer = pair
    create_session(writer, session_id)
    old = register_int(writer, session_id, "x", 1)
    get(reader, session_id, "x")
    writer.DeleteSession(pb.DeleteSessionRequest(session_id=session_id))
    imported = pb.Variable(
        id=old.id,
        name="x",
        type=pb.VARIABLE_TYPE_INTEGER,
        value=pb.Value(integer_value=40),
        constraints=pb.Constraints(min=0, max=100),
        version=7,
    )
    writer.ImportSession(pb.ImportSessionRequest(session_id=session_id, revision=3, variables=[imported]))
    read = get(reader, session_id, "x")
    assert (read.id, read.value.integer_value, read.version) == (old.id, 40, 7)
    assert read.constraints.max == 100


def test_a_read_by_id_after_a_delete_elsewhere_is_not_found(pair, session_id):
    reader, writer = pair
    create_session(writer, session_id)
    first = register_int(writer, session_id, "x", 1)
    assert get(reader, session_id, first.id).value.integer_value == 1
    writer.DeleteVariable(pb.DeleteVariableRequest(session_id=session_id, name_or_id=first.id))
    register_int(writer, session_id, "x", 2)
    error = rpc_error(reader.GetVariable, pb.GetVariableRequest(session_id=session_id, name_or_id=first.id))
    assert_status(error, grpc.StatusCode.NOT_FOUND)
    assert get(reader, session_id, "x").value.integer_value == 2
