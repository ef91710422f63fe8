"""Variable lifecycle through real gRPC against real Redis: register, get, list, update, delete."""

from __future__ import annotations

import re

import grpc
import pytest

from tests.integration.helpers import assert_status, create_session, get, register, rpc_error, set_value
from unified_bridge.proto import unified_bridge_pb2 as pb

ID_PATTERN = re.compile(r"var_(?P<name>.+)_[0-9a-f]{8}")


@pytest.fixture
def session(stub, session_id):
    create_session(stub, session_id)
    return session_id


def test_register_returns_the_whole_variable_at_version_zero(stub, session):
    response = stub.RegisterVariable(
        pb.RegisterVariableRequest(
            session_id=session,
            name="learning_rate",
            type=pb.VARIABLE_TYPE_FLOAT,
            value=pb.Value(float_value=0.01),
            constraints=pb.Constraints(min=0.0, max=1.0),
            metadata={"unit": "1/step"},
            description="step size of the optimizer",
        )
    )
    variable = response.variable
    assert response.created
    match = ID_PATTERN.fullmatch(variable.id)
    assert match is not None
    assert match["name"] == "learning_rate"
    assert variable.name == "learning_rate"
    assert variable.type == pb.VARIABLE_TYPE_FLOAT
    assert variable.value == pb.Value(float_value=0.01)
    assert variable.constraints == pb.Constraints(min=0.0, max=1.0)
    assert dict(variable.metadata) == {"unit": "1/step"}
    assert variable.description == "step size of the optimizer"
    assert variable.version == 0
    assert variable.created_at == variable.updated_at
    assert variable.created_at.ToMilliseconds() > 0


def test_get_by_name_and_by_id_return_the_same_stored_variable(stub, session):
    registered = register(
        stub,
        session,
        "layers",
        pb.VARIABLE_TYPE_INTEGER,
        pb.Value(integer_value=4),
        pb.Constraints(min=1, max=64),
        metadata={"k": "v"},
        description="depth",
    )
    by_name = get(stub, session, "layers")
    by_id = get(stub, session, registered.id)
    assert by_name == by_id == registered


def test_get_many_keeps_request_order_and_lists_missing(stub, session):
    a = register(stub, session, "a", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    b = register(stub, session, "b", pb.VARIABLE_TYPE_STRING, pb.Value(string_value="two"))
    response = stub.GetVariables(
        pb.GetVariablesRequest(session_id=session, names_or_ids=["b", "nope", a.id, "var_b_00000000"])
    )
    assert [v.id for v in response.variables] == [b.id, a.id]
    assert response.variables[0].value.string_value == "two"
    assert response.variables[1].value.integer_value == 1
    assert list(response.missing) == ["nope", "var_b_00000000"]


def test_get_many_of_nothing_is_empty(stub, session):
    response = stub.GetVariables(pb.GetVariablesRequest(session_id=session))
    assert list(response.variables) == []
    assert list(response.missing) == []


def test_list_is_sorted_by_name_and_filters_with_a_glob(stub, session):
    for name in ["opt.lr", "opt.momentum", "model.depth", "model.width", "seed"]:
        register(stub, session, name, pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=len(name)))
    everything = stub.ListVariables(pb.ListVariablesRequest(session_id=session)).variables
    assert [v.name for v in everything] == ["model.depth", "model.width", "opt.lr", "opt.momentum", "seed"]
    assert all(v.value.integer_value == len(v.name) for v in everything)

    def names(pattern: str) -> list[str]:
        request = pb.ListVariablesRequest(session_id=session, pattern=pattern)
        return [v.name for v in stub.ListVariables(request).variables]

    assert names("opt.*") == ["opt.lr", "opt.momentum"]
    assert names("model.[dw]*") == ["model.depth", "model.width"]
    assert names("see?") == ["seed"]
    assert names("*.lr") == ["opt.lr"]
    assert names("nothing*") == []


def test_list_of_an_empty_session_is_empty(stub, session):
    assert list(stub.ListVariables(pb.ListVariablesRequest(session_id=session)).variables) == []


def test_each_update_adds_one_to_the_version(stub, session):
    registered = register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=0))
    for expected_version in range(1, 6):
        response = set_value(stub, session, "x", pb.Value(integer_value=expected_version * 10))
        assert response.id == registered.id
        assert response.version == expected_version
    current = get(stub, session, "x")
    assert current.version == 5
    assert current.value.integer_value == 50
    assert current.created_at == registered.created_at
    assert current.updated_at.ToMilliseconds() >= registered.created_at.ToMilliseconds()


def test_update_by_id_is_the_same_as_by_name(stub, session):
    registered = register(stub, session, "x", pb.VARIABLE_TYPE_STRING, pb.Value(string_value="a"))
    set_value(stub, session, registered.id, pb.Value(string_value="b"))
    assert get(stub, session, "x").value.string_value == "b"
    assert get(stub, session, "x").version == 1


def test_registering_the_same_definition_again_is_idempotent(stub, session):
    constraints = pb.Constraints(min=0, max=10)
    first = register(
        stub, session, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=3), constraints, description="d"
    )
    set_value(stub, session, "x", pb.Value(integer_value=4))
    response = stub.RegisterVariable(
        pb.RegisterVariableRequest(
            session_id=session,
            name="x",
            type=pb.VARIABLE_TYPE_INTEGER,
            value=pb.Value(integer_value=9),
            constraints=constraints,
            description="d",
        )
    )
    assert not response.created
    assert response.variable.id == first.id
    assert response.variable.value.integer_value == 4
    assert response.variable.version == 1
    current = get(stub, session, "x")
    assert current.value.integer_value == 4
    assert current.version == 1
    assert stub.GetSession(pb.GetSessionRequest(session_id=session)).revision == 2


@pytest.mark.parametrize(
    "changed",
    [
        {"type": pb.VARIABLE_TYPE_FLOAT, "value": pb.Value(float_value=3.0)},
        {"constraints": pb.Constraints(min=0, max=11)},
        {"constraints": pb.Constraints()},
        {"metadata": {"owner": "someone else"}},
        {"description": "another"},
    ],
    ids=["type", "constraints", "no-constraints", "metadata", "description"],
)
def test_registering_another_definition_under_a_taken_name_is_already_exists(stub, session, changed):
    original = {
        "name": "x",
        "type": pb.VARIABLE_TYPE_INTEGER,
        "value": pb.Value(integer_value=3),
        "constraints": pb.Constraints(min=0, max=10),
        "description": "d",
    }
    first = stub.RegisterVariable(pb.RegisterVariableRequest(session_id=session, **original)).variable
    error = rpc_error(
        stub.RegisterVariable, pb.RegisterVariableRequest(session_id=session, **{**original, **changed})
    )
    assert_status(
        error, grpc.StatusCode.ALREADY_EXISTS, "Variable already exists: x (with another definition)"
    )
    assert get(stub, session, "x") == first


def test_delete_by_name_removes_the_variable(stub, session):
    registered = register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    register(stub, session, "y", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=2))
    deleted = stub.DeleteVariable(pb.DeleteVariableRequest(session_id=session, name_or_id="x"))
    assert deleted.id == registered.id
    assert deleted.revision == 3
    for ref in ("x", registered.id):
        error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=session, name_or_id=ref))
        assert_status(error, grpc.StatusCode.NOT_FOUND, f"Variable not found: {ref}")
    assert [v.name for v in stub.ListVariables(pb.ListVariablesRequest(session_id=session)).variables] == [
        "y"
    ]
    assert stub.GetSession(pb.GetSessionRequest(session_id=session)).variable_count == 1
    error = rpc_error(stub.DeleteVariable, pb.DeleteVariableRequest(session_id=session, name_or_id="x"))
    assert_status(error, grpc.StatusCode.NOT_FOUND, "Variable not found: x")


def test_delete_by_id_frees_the_name(stub, session):
    registered = register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    stub.DeleteVariable(pb.DeleteVariableRequest(session_id=session, name_or_id=registered.id))
    error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=session, name_or_id="x"))
    assert_status(error, grpc.StatusCode.NOT_FOUND, "Variable not found: x")
    again = stub.RegisterVariable(
        pb.RegisterVariableRequest(
            session_id=session, name="x", type=pb.VARIABLE_TYPE_STRING, value=pb.Value(string_value="new")
        )
    )
    assert again.created
    assert again.variable.id != registered.id
    assert again.variable.version == 0
    assert get(stub, session, "x").value.string_value == "new"


def test_an_update_through_a_stale_id_does_not_reach_the_re_registered_variable(stub, session):
    old = register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    stub.DeleteVariable(pb.DeleteVariableRequest(session_id=session, name_or_id="x"))
    new = register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=2))
    error = rpc_error(
        stub.SetVariable,
        pb.SetVariableRequest(session_id=session, name_or_id=old.id, value=pb.Value(integer_value=3)),
    )
    assert_status(error, grpc.StatusCode.NOT_FOUND, f"Variable not found: {old.id}")
    assert get(stub, session, new.id).value.integer_value == 2


def test_a_name_shaped_like_a_variable_id_is_refused(stub, session):
    """Names win over ids in lookups, so a look-alike name would hide the variable it mimics."""
    original = register(stub, session, "a", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=1))
    error = rpc_error(
        stub.RegisterVariable,
        pb.RegisterVariableRequest(
            session_id=session,
            name=original.id,
            type=pb.VARIABLE_TYPE_STRING,
            value=pb.Value(string_value="me"),
        ),
    )
    assert_status(
        error,
        grpc.StatusCode.INVALID_ARGUMENT,
        f"invalid variable name {original.id!r}: it has the form of a variable id",
    )
    assert get(stub, session, original.id) == original
