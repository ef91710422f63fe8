"""Sessions are isolated: the same names stay separate, and no crafted name, id or session id reaches
another session's keys."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import redis

from tests.integration.helpers import (
    Watch,
    assert_status,
    create_session,
    get,
    register,
    rpc_error,
    session_redis_keys,
    set_value,
)
from unified_bridge.proto import unified_bridge_pb2 as pb


@pytest.fixture
def two(stub, session_id) -> tuple[str, str]:
    first, second = f"{session_id}_A", f"{session_id}_B"
    create_session(stub, first)
    create_session(stub, second)
    return first, second


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def integer(n: int) -> pb.Value:
    return pb.Value(integer_value=n)


def test_the_same_name_in_two_sessions_is_two_variables(stub, two):
    a, b = two
    in_a = register(stub, a, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    in_b = register(stub, b, "x", pb.VARIABLE_TYPE_STRING, pb.Value(string_value="b"))
    assert in_a.id != in_b.id
    set_value(stub, a, "x", integer(2))
    set_value(stub, a, "x", integer(3))
    assert (get(stub, a, "x").value.integer_value, get(stub, a, "x").version) == (3, 2)
    assert (get(stub, b, "x").value.string_value, get(stub, b, "x").version) == ("b", 0)
    assert stub.GetSession(pb.GetSessionRequest(session_id=a)).revision == 3
    assert stub.GetSession(pb.GetSessionRequest(session_id=b)).revision == 1

    stub.DeleteVariable(pb.DeleteVariableRequest(session_id=a, name_or_id="x"))
    assert get(stub, b, "x") == get(stub, b, in_b.id)
    assert [v.id for v in stub.ListVariables(pb.ListVariablesRequest(session_id=b)).variables] == [in_b.id]
    assert list(stub.ListVariables(pb.ListVariablesRequest(session_id=a)).variables) == []


def test_registering_the_same_definition_in_another_session_creates_it_there(stub, two):
    a, b = two
    first = stub.RegisterVariable(
        pb.RegisterVariableRequest(session_id=a, name="x", type=pb.VARIABLE_TYPE_INTEGER, value=integer(1))
    )
    second = stub.RegisterVariable(
        pb.RegisterVariableRequest(session_id=b, name="x", type=pb.VARIABLE_TYPE_INTEGER, value=integer(1))
    )
    assert first.created
    assert second.created
    assert first.variable.id != second.variable.id


def test_another_sessions_id_is_not_found(stub, two):
    a, b = two
    in_a = register(stub, a, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    not_found = (grpc.StatusCode.NOT_FOUND, f"Variable not found: {in_a.id}")
    assert_status(
        rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=b, name_or_id=in_a.id)), *not_found
    )
    error = rpc_error(
        stub.SetVariable, pb.SetVariableRequest(session_id=b, name_or_id=in_a.id, value=integer(9))
    )
    assert_status(error, *not_found)
    error = rpc_error(stub.DeleteVariable, pb.DeleteVariableRequest(session_id=b, name_or_id=in_a.id))
    assert_status(error, *not_found)
    response = stub.GetVariables(pb.GetVariablesRequest(session_id=b, names_or_ids=[in_a.id, "x"]))
    assert (list(response.variables), list(response.missing)) == ([], [in_a.id, "x"])
    assert get(stub, a, in_a.id) == in_a


def test_a_batch_cannot_touch_another_session(stub, two):
    a, b = two
    in_a = register(stub, a, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    register(stub, b, "y", pb.VARIABLE_TYPE_INTEGER, integer(1))
    response = stub.SetVariables(
        pb.SetVariablesRequest(
            session_id=b,
            updates=[
                pb.VariableUpdate(name_or_id=in_a.id, value=integer(9)),
                pb.VariableUpdate(name_or_id="y", value=integer(2)),
            ],
        )
    )
    assert [(r.ok, r.error.code) for r in response.results] == [(False, "NOT_FOUND"), (True, "")]
    assert get(stub, a, "x") == in_a


# Session ids are any printable text; these look like fragments of another session's keys.
CRAFTED_IDS = [
    "{A}",
    "A}:vars",
    "A}:names",
    "x}:session",
    "ub:{A}:vars",
    "*",
    "A*",
    "A?",
    "A[x]",
    "A%7D",
    "A%",
    "A B",
    "A:",
    "A/../x",
    "Å",
]


@pytest.mark.parametrize("crafted", CRAFTED_IDS)
def test_a_crafted_session_id_is_a_session_of_its_own(stub, two, redis_client, crafted):
    a, _ = two
    register(stub, a, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    keys_of_a = sorted(session_redis_keys(redis_client, a))
    target = crafted.replace("A", a)
    error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=target, name_or_id="x"))
    assert_status(error, grpc.StatusCode.NOT_FOUND)

    create_session(stub, target)
    register(stub, target, "x", pb.VARIABLE_TYPE_INTEGER, integer(7))
    set_value(stub, target, "x", integer(8))
    assert (get(stub, target, "x").value.integer_value, get(stub, target, "x").version) == (8, 1)
    assert len(session_redis_keys(redis_client, target)) == 4
    listed = stub.ListSessions(pb.ListSessionsRequest(page_size=1000)).session_ids
    assert target in listed

    stub.DeleteSession(pb.DeleteSessionRequest(session_id=target))
    assert session_redis_keys(redis_client, target) == []
    assert (get(stub, a, "x").value.integer_value, get(stub, a, "x").version) == (1, 0)
    assert sorted(session_redis_keys(redis_client, a)) == keys_of_a


@pytest.mark.parametrize("refused", ["A\n", " A", "A ", "A\x00", "A\u200b", "A\u2028", "A\x7f", ""])
def test_a_session_id_that_is_not_printable_text_is_refused(stub, two, refused):
    a, _ = two
    register(stub, a, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    target = refused.replace("A", a)
    error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=target, name_or_id="x"))
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT)
    error = rpc_error(
        stub.SetVariable, pb.SetVariableRequest(session_id=target, name_or_id="x", value=integer(5))
    )
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT)
    error = rpc_error(stub.DeleteSession, pb.DeleteSessionRequest(session_id=target))
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT)
    assert get(stub, a, "x").version == 0


@pytest.mark.parametrize(
    "crafted", ["d:x", "n:x", "x}:vars", "{B}", "../x", "*", "x\n", "m:var_x", "var_x_*", "var x"]
)
def test_a_crafted_name_or_id_is_rejected(stub, two, crafted):
    a, b = two
    register(stub, a, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    target = crafted.replace("B", b)
    for method, request in [
        ("GetVariable", pb.GetVariableRequest(session_id=a, name_or_id=target)),
        ("SetVariable", pb.SetVariableRequest(session_id=a, name_or_id=target, value=integer(5))),
        ("DeleteVariable", pb.DeleteVariableRequest(session_id=a, name_or_id=target)),
        (
            "RegisterVariable",
            pb.RegisterVariableRequest(
                session_id=a, name=target, type=pb.VARIABLE_TYPE_INTEGER, value=integer(1)
            ),
        ),
    ]:
        assert_status(rpc_error(getattr(stub, method), request), grpc.StatusCode.INVALID_ARGUMENT)
    assert get(stub, a, "x").version == 0


def test_a_sessions_keys_all_carry_its_own_hash_tag(stub, two, redis_client):
    a, b = two
    for name in ["x", "var_y", "d.e-f"]:
        register(stub, a, name, pb.VARIABLE_TYPE_INTEGER, integer(1))
        set_value(stub, a, name, integer(2))
    keys = sorted(key.decode() for key in session_redis_keys(redis_client, a))
    assert keys == [f"ub:2:{{{a}}}:{part}" for part in ["log", "names", "session", "vars"]]
    assert session_redis_keys(redis_client, b) == [f"ub:2:{{{b}}}:session".encode()]


def test_deleting_one_session_leaves_the_other(stub, two, redis_client):
    a, b = two
    register(stub, a, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    in_b = register(stub, b, "x", pb.VARIABLE_TYPE_INTEGER, integer(2))
    stub.DeleteSession(pb.DeleteSessionRequest(session_id=a))
    assert session_redis_keys(redis_client, a) == []
    assert get(stub, b, "x") == in_b
    assert len(session_redis_keys(redis_client, b)) == 4


def test_a_session_id_that_prefixes_another_is_separate(stub, session_id):
    short, long = session_id, f"{session_id}_"
    create_session(stub, short)
    create_session(stub, long)
    register(stub, short, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=long, name_or_id="x"))
    assert_status(error, grpc.StatusCode.NOT_FOUND, "Variable not found: x")
    stub.DeleteSession(pb.DeleteSessionRequest(session_id=long))
    assert get(stub, short, "x").value.integer_value == 1


def test_a_watcher_sees_only_its_own_session(stub, two):
    a, b = two
    register(stub, a, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    register(stub, b, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    with Watch(stub, b, from_now=True) as watch:
        assert watch.caught_up().revision == 1
        set_value(stub, a, "x", integer(10))
        set_value(stub, a, "x", integer(11))
        set_value(stub, b, "x", integer(20))
        event = watch.next()
    assert event.revision == 2
    assert [(c.name, c.value.integer_value) for c in event.changes] == [("x", 20)]
