"""Bad input through real gRPC: unknown sessions and variables, malformed requests, configured
limits. Every case gets a clear status and message, and no input at all yields INTERNAL."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import assert_status, create_session, get, register, rpc_error
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc
from unified_bridge.types import message

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture
def session(stub, session_id):
    create_session(stub, session_id)
    return session_id


def _value(n: int = 1) -> pb.Value:
    return pb.Value(integer_value=n)


def session_requests(sid: str) -> list[tuple[str, object]]:
    """(method, request) for every unary RPC that works on an existing session."""
    return [
        ("GetSession", pb.GetSessionRequest(session_id=sid)),
        ("Heartbeat", pb.HeartbeatRequest(session_id=sid)),
        (
            "RegisterVariable",
            pb.RegisterVariableRequest(
                session_id=sid, name="x", type=pb.VARIABLE_TYPE_INTEGER, value=_value()
            ),
        ),
        ("GetVariable", pb.GetVariableRequest(session_id=sid, name_or_id="x")),
        ("GetVariables", pb.GetVariablesRequest(session_id=sid, names_or_ids=["x", "y"])),
        ("GetVariables", pb.GetVariablesRequest(session_id=sid)),
        ("SetVariable", pb.SetVariableRequest(session_id=sid, name_or_id="x", value=_value())),
        (
            "SetVariables",
            pb.SetVariablesRequest(
                session_id=sid, updates=[pb.VariableUpdate(name_or_id="x", value=_value())], atomic=True
            ),
        ),
        (
            "SetVariables",
            pb.SetVariablesRequest(
                session_id=sid, updates=[pb.VariableUpdate(name_or_id="x", value=_value())]
            ),
        ),
        ("DeleteVariable", pb.DeleteVariableRequest(session_id=sid, name_or_id="x")),
        ("ListVariables", pb.ListVariablesRequest(session_id=sid)),
        ("ListVariables", pb.ListVariablesRequest(session_id=sid, pattern="x*")),
    ]


def watch_error(stub, request: pb.WatchSessionRequest) -> grpc.RpcError:
    try:
        events = list(stub.WatchSession(request, timeout=10))
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"expected the watch to fail, it sent {events!r}")


# --- unknown sessions and variables ------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(session_requests("s"))))
def test_unknown_session_is_not_found(stub, session_id, index):
    method, request = session_requests(session_id)[index]
    error = rpc_error(getattr(stub, method), request)
    assert_status(error, grpc.StatusCode.NOT_FOUND, message("session_not_found", session_id=session_id))


def test_watching_an_unknown_session_is_not_found(stub, session_id):
    error = watch_error(stub, pb.WatchSessionRequest(session_id=session_id))
    assert_status(error, grpc.StatusCode.NOT_FOUND, f"Session not found: {session_id}")


def test_unknown_session_message_names_the_session(stub):
    error = rpc_error(stub.GetSession, pb.GetSessionRequest(session_id="x"))
    assert_status(error, grpc.StatusCode.NOT_FOUND, "Session not found: x")


@pytest.mark.parametrize(
    ("method", "make"),
    [
        ("GetVariable", lambda s: pb.GetVariableRequest(session_id=s, name_or_id="x")),
        ("SetVariable", lambda s: pb.SetVariableRequest(session_id=s, name_or_id="x", value=_value())),
        ("DeleteVariable", lambda s: pb.DeleteVariableRequest(session_id=s, name_or_id="x")),
        (
            "SetVariables",
            lambda s: pb.SetVariablesRequest(
                session_id=s, updates=[pb.VariableUpdate(name_or_id="x", value=_value())], atomic=True
            ),
        ),
    ],
)
def test_unknown_variable_is_not_found(stub, session, method, make):
    error = rpc_error(getattr(stub, method), make(session))
    assert_status(error, grpc.StatusCode.NOT_FOUND, "Variable not found: x")


def test_unknown_id_is_not_found(stub, session):
    error = rpc_error(
        stub.GetVariable, pb.GetVariableRequest(session_id=session, name_or_id="var_x_deadbeef")
    )
    assert_status(error, grpc.StatusCode.NOT_FOUND, "Variable not found: var_x_deadbeef")


# --- malformed session ids ---------------------------------------------------------------------

# Session ids are printable text: control and format characters and outer spaces are refused.
BAD_SESSION_IDS = [" a", "a ", "a\n", "a\tb", "\x00", "a\u200bb", "a\u2028b", "a\x7f", "\u00a0a"]


@pytest.mark.parametrize("bad", BAD_SESSION_IDS)
def test_create_rejects_a_session_id_that_is_not_printable_text(stub, bad):
    error = rpc_error(stub.CreateSession, pb.CreateSessionRequest(session_id=bad))
    assert_status(error, INVALID, message("session_id_invalid", session_id=bad))


@pytest.mark.parametrize("bad", BAD_SESSION_IDS)
def test_every_call_rejects_a_malformed_session_id(stub, bad):
    for method, request in session_requests(bad):
        error = rpc_error(getattr(stub, method), request)
        assert_status(error, INVALID, message("session_id_invalid", session_id=bad))
    assert_status(watch_error(stub, pb.WatchSessionRequest(session_id=bad)), INVALID)
    assert_status(rpc_error(stub.DeleteSession, pb.DeleteSessionRequest(session_id=bad)), INVALID)


def test_an_empty_session_id_is_invalid_except_for_create(stub):
    for method, request in session_requests(""):
        assert_status(rpc_error(getattr(stub, method), request), INVALID, message("session_id_empty"))
    assert_status(rpc_error(stub.DeleteSession, pb.DeleteSessionRequest()), INVALID, "session id is empty")
    assert_status(watch_error(stub, pb.WatchSessionRequest()), INVALID, "session id is empty")


def test_a_too_long_session_id_is_invalid(stub, frontend):
    limit = frontend.server.settings.max_session_id_length
    error = rpc_error(stub.CreateSession, pb.CreateSessionRequest(session_id="s" * (limit + 1)))
    assert_status(error, INVALID, message("session_id_too_long", length=limit + 1, max_length=limit))
    created = stub.CreateSession(pb.CreateSessionRequest(session_id=f"{uuid.uuid4().hex}".ljust(limit, "s")))
    assert created.created


def test_session_ids_may_use_dots_dashes_and_underscores(stub, session_id):
    sid = f"{session_id}.a-b_c"
    assert create_session(stub, sid).session_id == sid
    register(stub, sid, "x", pb.VARIABLE_TYPE_INTEGER, _value())
    assert get(stub, sid, "x").value.integer_value == 1


# --- malformed names and references ------------------------------------------------------------

BAD_NAMES = ["1abc", "-a", ".a", "a b", "a:b", "a{b}", "a*", "a?", "a[0]", "a\n", "a/b", "ä", "a,b"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_register_rejects_a_bad_name(stub, session, bad):
    request = pb.RegisterVariableRequest(
        session_id=session, name=bad, type=pb.VARIABLE_TYPE_INTEGER, value=_value()
    )
    assert_status(rpc_error(stub.RegisterVariable, request), INVALID, message("name_invalid", name=bad))
    assert stub.GetSession(pb.GetSessionRequest(session_id=session)).revision == 0


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_a_bad_reference_is_invalid_not_merely_missing(stub, session, bad):
    for method, request in [
        ("GetVariable", pb.GetVariableRequest(session_id=session, name_or_id=bad)),
        ("GetVariables", pb.GetVariablesRequest(session_id=session, names_or_ids=["ok", bad])),
        ("SetVariable", pb.SetVariableRequest(session_id=session, name_or_id=bad, value=_value())),
        ("DeleteVariable", pb.DeleteVariableRequest(session_id=session, name_or_id=bad)),
    ]:
        assert_status(rpc_error(getattr(stub, method), request), INVALID, message("name_invalid", name=bad))


def test_an_empty_name_is_invalid(stub, session):
    request = pb.RegisterVariableRequest(session_id=session, type=pb.VARIABLE_TYPE_INTEGER, value=_value())
    assert_status(rpc_error(stub.RegisterVariable, request), INVALID, message("name_empty"))
    error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=session))
    assert_status(error, INVALID, "a variable name or id is required")


def test_a_too_long_name_is_invalid(stub, session, frontend):
    limit = frontend.server.settings.max_name_length
    request = pb.RegisterVariableRequest(
        session_id=session, name="n" * (limit + 1), type=pb.VARIABLE_TYPE_INTEGER, value=_value()
    )
    error = rpc_error(stub.RegisterVariable, request)
    assert_status(error, INVALID, message("name_too_long", length=limit + 1, max_length=limit))
    registered = register(stub, session, "n" * limit, pb.VARIABLE_TYPE_INTEGER, _value())
    # Its id is longer than any name may be, and still works as a reference.
    assert get(stub, session, registered.id).name == "n" * limit


# --- malformed values, types and constraints ---------------------------------------------------


def test_an_unset_value_is_invalid(stub, session):
    request = pb.RegisterVariableRequest(session_id=session, name="x", type=pb.VARIABLE_TYPE_INTEGER)
    assert_status(rpc_error(stub.RegisterVariable, request), INVALID, message("value_required"))
    register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, _value(4))
    error = rpc_error(stub.SetVariable, pb.SetVariableRequest(session_id=session, name_or_id="x"))
    assert_status(error, INVALID, message("value_required"))
    error = rpc_error(
        stub.SetVariables,
        pb.SetVariablesRequest(session_id=session, updates=[pb.VariableUpdate(name_or_id="x")]),
    )
    assert_status(error, INVALID, "value is required for x")
    assert get(stub, session, "x").version == 0


@pytest.mark.parametrize("type_number", [pb.VARIABLE_TYPE_UNSPECIFIED, 9, 99, -1])
def test_an_unspecified_or_unknown_type_is_invalid(stub, session, type_number):
    request = pb.RegisterVariableRequest(session_id=session, name="x", type=type_number, value=_value())
    assert_status(
        rpc_error(stub.RegisterVariable, request), INVALID, message("unknown_type", value=type_number)
    )


INAPPLICABLE = [
    (pb.VARIABLE_TYPE_FLOAT, pb.Value(float_value=1.0), pb.Constraints(min_length=1), "min_length", "float"),
    (pb.VARIABLE_TYPE_INTEGER, _value(), pb.Constraints(choices=["a"]), "choices", "integer"),
    (pb.VARIABLE_TYPE_STRING, pb.Value(string_value="a"), pb.Constraints(max=3), "max", "string"),
    (pb.VARIABLE_TYPE_BOOLEAN, pb.Value(bool_value=True), pb.Constraints(min=0), "min", "boolean"),
    (
        pb.VARIABLE_TYPE_CHOICE,
        pb.Value(choice_value="a"),
        pb.Constraints(choices=["a"], pattern="a"),
        "pattern",
        "choice",
    ),
    (
        pb.VARIABLE_TYPE_MODULE,
        pb.Value(module_value="m"),
        pb.Constraints(dimensions=2),
        "dimensions",
        "module",
    ),
    (
        pb.VARIABLE_TYPE_EMBEDDING,
        pb.Value(embedding_value=pb.FloatList(values=[1.0])),
        pb.Constraints(shape=[1]),
        "shape",
        "embedding",
    ),
    (
        pb.VARIABLE_TYPE_TENSOR,
        pb.Value(tensor_value=pb.Tensor(shape=[1], values=[1.0])),
        pb.Constraints(enum_values=["a"]),
        "enum",
        "tensor",
    ),
]


@pytest.mark.parametrize(("var_type", "value", "constraints", "key", "word"), INAPPLICABLE)
def test_a_constraint_of_another_type_is_invalid(stub, session, var_type, value, constraints, key, word):
    request = pb.RegisterVariableRequest(
        session_id=session, name="x", type=var_type, value=value, constraints=constraints
    )
    error = rpc_error(stub.RegisterVariable, request)
    assert_status(error, INVALID, message("constraint_not_applicable", key=key, type=word))


BAD_CONSTRAINTS = [
    (
        pb.VARIABLE_TYPE_FLOAT,
        pb.Value(float_value=1.0),
        pb.Constraints(min=2, max=1),
        message("min_above_max", min=2.0, max=1.0),
    ),
    (
        pb.VARIABLE_TYPE_STRING,
        pb.Value(string_value="abc"),
        pb.Constraints(min_length=5, max_length=2),
        message("min_length_above_max_length", min_length=5, max_length=2),
    ),
    (
        pb.VARIABLE_TYPE_CHOICE,
        pb.Value(choice_value="a"),
        pb.Constraints(),
        message("constraint_required", key="choices", type="choice"),
    ),
    (
        pb.VARIABLE_TYPE_CHOICE,
        pb.Value(choice_value="a"),
        pb.Constraints(choices=["a", "a"]),
        message("bad_constraint", key="choices", problem="must not repeat a value", value=["a", "a"]),
    ),
    (
        pb.VARIABLE_TYPE_EMBEDDING,
        pb.Value(embedding_value=pb.FloatList(values=[1.0])),
        pb.Constraints(dimensions=0),
        message("bad_constraint", key="dimensions", problem="must be between 1 and 4294967295", value=0),
    ),
    (
        pb.VARIABLE_TYPE_TENSOR,
        pb.Value(tensor_value=pb.Tensor(shape=[1], values=[1.0])),
        pb.Constraints(dtype="complex64"),
        message("bad_dtype", dtype="complex64", options="float32, float64, int32, int64"),
    ),
    (
        pb.VARIABLE_TYPE_TENSOR,
        pb.Value(tensor_value=pb.Tensor(shape=[1], values=[1.0])),
        pb.Constraints(shape=[2, 0]),
        message("bad_constraint", key="shape", problem="must be between 1 and 4294967295", value=0),
    ),
]


@pytest.mark.parametrize(("var_type", "value", "constraints", "expected"), BAD_CONSTRAINTS)
def test_contradictory_or_malformed_constraints_are_invalid(
    stub, session, var_type, value, constraints, expected
):
    request = pb.RegisterVariableRequest(
        session_id=session, name="x", type=var_type, value=value, constraints=constraints
    )
    assert_status(rpc_error(stub.RegisterVariable, request), INVALID, expected)


def test_a_bad_pattern_is_invalid(stub, session):
    request = pb.RegisterVariableRequest(
        session_id=session,
        name="x",
        type=pb.VARIABLE_TYPE_STRING,
        value=pb.Value(string_value="a"),
        constraints=pb.Constraints(pattern="(unclosed"),
    )
    error = rpc_error(stub.RegisterVariable, request)
    assert_status(error, INVALID)
    assert error.details().startswith("constraint 'pattern' is not a valid regular expression: ")


def test_bad_metadata_is_invalid(stub, session, frontend):
    error = rpc_error(stub.CreateSession, pb.CreateSessionRequest(metadata={"": "v"}))
    assert_status(error, INVALID, message("metadata_empty_key"))
    limit = frontend.server.settings.max_metadata_entries
    too_many = {f"k{i}": "v" for i in range(limit + 1)}
    request = pb.RegisterVariableRequest(
        session_id=session, name="x", type=pb.VARIABLE_TYPE_INTEGER, value=_value(), metadata=too_many
    )
    error = rpc_error(stub.RegisterVariable, request)
    assert_status(error, INVALID, message("metadata_too_many", count=limit + 1, max_entries=limit))


def test_a_bad_page_token_is_invalid(stub):
    assert_status(rpc_error(stub.ListSessions, pb.ListSessionsRequest(page_token="abc")), INVALID)


# --- configured limits -------------------------------------------------------------------------


@pytest.fixture
def limited(frontend_factory) -> Iterator[pb_grpc.UnifiedBridgeStub]:
    server = frontend_factory(
        max_value_bytes=100,
        max_batch_size=5,
        max_variables_per_session=3,
        max_ttl_seconds=600,
        default_ttl_seconds=60,
        max_description_length=10,
    )
    with grpc.insecure_channel(server.target) as channel:
        yield pb_grpc.UnifiedBridgeStub(channel)


def test_a_value_above_the_size_limit_is_resource_exhausted(limited, session_id):
    create_session(limited, session_id)
    big = pb.Value(string_value="x" * 200)
    request = pb.RegisterVariableRequest(
        session_id=session_id, name="s", type=pb.VARIABLE_TYPE_STRING, value=big
    )
    error = rpc_error(limited.RegisterVariable, request)
    assert_status(error, EXHAUSTED, "value of s is 202 bytes, above the limit of 100 bytes")
    register(limited, session_id, "s", pb.VARIABLE_TYPE_STRING, pb.Value(string_value="small"))
    error = rpc_error(
        limited.SetVariable, pb.SetVariableRequest(session_id=session_id, name_or_id="s", value=big)
    )
    assert_status(error, EXHAUSTED, "value of s is 202 bytes, above the limit of 100 bytes")
    current = get(limited, session_id, "s")
    assert (current.value.string_value, current.version) == ("small", 0)
    embedding = pb.Value(embedding_value=pb.FloatList(values=[0.5] * 20))
    request = pb.RegisterVariableRequest(
        session_id=session_id, name="e", type=pb.VARIABLE_TYPE_EMBEDDING, value=embedding
    )
    assert_status(rpc_error(limited.RegisterVariable, request), EXHAUSTED)


def test_a_value_above_the_size_limit_fails_only_its_item_in_a_non_atomic_batch(limited, session_id):
    create_session(limited, session_id)
    register(limited, session_id, "s", pb.VARIABLE_TYPE_STRING, pb.Value(string_value="a"))
    register(limited, session_id, "t", pb.VARIABLE_TYPE_STRING, pb.Value(string_value="a"))
    response = limited.SetVariables(
        pb.SetVariablesRequest(
            session_id=session_id,
            updates=[
                pb.VariableUpdate(name_or_id="s", value=pb.Value(string_value="x" * 200)),
                pb.VariableUpdate(name_or_id="t", value=pb.Value(string_value="b")),
            ],
        )
    )
    assert [(r.ok, r.error.code) for r in response.results] == [(False, "RESOURCE_EXHAUSTED"), (True, "")]
    assert "above the limit of 100 bytes" in response.results[0].error.message


def test_variables_per_session_limit(limited, session_id):
    create_session(limited, session_id)
    for name in "abc":
        register(limited, session_id, name, pb.VARIABLE_TYPE_INTEGER, _value())
    request = pb.RegisterVariableRequest(
        session_id=session_id, name="d", type=pb.VARIABLE_TYPE_INTEGER, value=_value()
    )
    error = rpc_error(limited.RegisterVariable, request)
    assert_status(error, EXHAUSTED, f"session {session_id} already holds 3 variables")
    # Registering an existing variable again is still fine, and a deletion makes room.
    again = limited.RegisterVariable(
        pb.RegisterVariableRequest(
            session_id=session_id, name="a", type=pb.VARIABLE_TYPE_INTEGER, value=_value()
        )
    )
    assert not again.created
    limited.DeleteVariable(pb.DeleteVariableRequest(session_id=session_id, name_or_id="a"))
    assert limited.RegisterVariable(request).created
    assert limited.GetSession(pb.GetSessionRequest(session_id=session_id)).variable_count == 3


def test_batch_size_limit(limited, session_id):
    create_session(limited, session_id)
    for name in "abc":
        register(limited, session_id, name, pb.VARIABLE_TYPE_INTEGER, _value())
    updates = [pb.VariableUpdate(name_or_id=name, value=_value(2)) for name in "abcab"]
    assert (
        len(limited.SetVariables(pb.SetVariablesRequest(session_id=session_id, updates=updates)).results) == 5
    )
    updates.append(pb.VariableUpdate(name_or_id="c", value=_value(3)))
    for atomic in (True, False):
        request = pb.SetVariablesRequest(session_id=session_id, updates=updates, atomic=atomic)
        assert_status(
            rpc_error(limited.SetVariables, request), EXHAUSTED, "batch of 6 items is above the limit of 5"
        )
    request = pb.GetVariablesRequest(session_id=session_id, names_or_ids=list("abcabc"))
    assert_status(
        rpc_error(limited.GetVariables, request), EXHAUSTED, "batch of 6 items is above the limit of 5"
    )
    assert [
        v.value.integer_value
        for v in limited.ListVariables(pb.ListVariablesRequest(session_id=session_id)).variables
    ] == [2, 2, 2]


def test_ttl_above_the_maximum_is_invalid(limited, session_id):
    error = rpc_error(limited.CreateSession, pb.CreateSessionRequest(session_id=session_id, ttl_seconds=601))
    assert_status(error, INVALID, "ttl 601 s is above the maximum of 600 s")
    assert_status(
        rpc_error(limited.GetSession, pb.GetSessionRequest(session_id=session_id)), grpc.StatusCode.NOT_FOUND
    )
    assert create_session(limited, session_id, ttl_seconds=600).ttl_seconds == 600


def test_description_above_the_limit(limited, session_id):
    create_session(limited, session_id)
    request = pb.RegisterVariableRequest(
        session_id=session_id, name="x", type=pb.VARIABLE_TYPE_INTEGER, value=_value(), description="d" * 11
    )
    error = rpc_error(limited.RegisterVariable, request)
    assert_status(error, EXHAUSTED, "description is 11 characters, above the limit of 10")


def test_the_default_batch_limit_allows_1000(stub, frontend):
    assert frontend.server.settings.max_batch_size >= 1000


# --- no user input yields INTERNAL -------------------------------------------------------------

NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE}


@pytest.fixture(scope="module")
def fuzz(frontend) -> Iterator[tuple[pb_grpc.UnifiedBridgeStub, str]]:
    """A stub and a session for hypothesis, shared across its examples."""
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        sid = f"fuzz_{uuid.uuid4().hex}"
        create_session(stub, sid)
        bounds = pb.Constraints(min=-10, max=10)
        register(stub, sid, "f", pb.VARIABLE_TYPE_FLOAT, pb.Value(float_value=0), bounds)
        register(stub, sid, "i", pb.VARIABLE_TYPE_INTEGER, _value(0), bounds)
        register(
            stub, sid, "s", pb.VARIABLE_TYPE_STRING, pb.Value(string_value="a"), pb.Constraints(pattern="^a")
        )
        register(
            stub, sid, "c", pb.VARIABLE_TYPE_CHOICE, pb.Value(choice_value="a"), pb.Constraints(choices=["a"])
        )
        register(
            stub, sid, "e", pb.VARIABLE_TYPE_EMBEDDING, pb.Value(embedding_value=pb.FloatList(values=[1.0]))
        )
        register(
            stub, sid, "t", pb.VARIABLE_TYPE_TENSOR, pb.Value(tensor_value=pb.Tensor(shape=[1], values=[1.0]))
        )
        yield stub, sid
        stub.DeleteSession(pb.DeleteSessionRequest(session_id=sid))


texts = st.text(max_size=40) | st.sampled_from(
    ["", "f", "i", "s", "c", "e", "t", "var_f_00000000", "{x}", "a:b"]
)
floats = st.floats(allow_nan=True, allow_infinity=True)
values = st.one_of(
    st.just(pb.Value()),
    floats.map(lambda v: pb.Value(float_value=v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: pb.Value(integer_value=v)),
    texts.map(lambda v: pb.Value(string_value=v)),
    st.booleans().map(lambda v: pb.Value(bool_value=v)),
    texts.map(lambda v: pb.Value(choice_value=v)),
    texts.map(lambda v: pb.Value(module_value=v)),
    st.lists(floats, max_size=8).map(lambda v: pb.Value(embedding_value=pb.FloatList(values=v))),
    st.builds(
        lambda shape, dtype, vals: pb.Value(tensor_value=pb.Tensor(shape=shape, dtype=dtype, values=vals)),
        st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 4), max_size=4),
        st.sampled_from(["", "float32", "float64", "int32", "int64", "bogus"]),
        st.lists(floats, max_size=16),
    ),
)
optional_floats = st.none() | floats
constraints = st.builds(
    lambda lo, hi, lengths, pattern, words, dims, shape, dtype: pb.Constraints(
        min=lo,
        max=hi,
        min_length=lengths[0],
        max_length=lengths[1],
        pattern=pattern,
        enum_values=words,
        choices=words,
        allowed_modules=words,
        dimensions=dims,
        shape=shape,
        dtype=dtype,
    ),
    optional_floats,
    optional_floats,
    st.tuples(st.none() | st.integers(0, 2**32 - 1), st.none() | st.integers(0, 2**32 - 1)),
    st.none() | st.sampled_from(["^a", "(", "[", "a{99999}", "(?P<x>", "\\"]) | st.text(max_size=10),
    st.lists(texts, max_size=3),
    st.none() | st.integers(0, 2**32 - 1),
    st.lists(st.integers(0, 2**32 - 1), max_size=3),
    st.none() | st.sampled_from(["float32", "int64", "complex", ""]),
)
metadata = st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4)


def _never_internal(call, request) -> None:
    """Success or a clear error status, never a bug's status (an error also needs a message)."""
    failure: grpc.RpcError | None = None
    try:
        call(request, timeout=10)
    except grpc.RpcError as error:
        failure = error
    if failure is not None:
        assert failure.code() not in NEVER, (failure.code(), failure.details(), request)
        assert failure.details(), request


FUZZ_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ_SETTINGS
@given(name=texts, value=values)
def test_random_updates_never_yield_internal(fuzz, name, value):
    stub, sid = fuzz
    _never_internal(stub.SetVariable, pb.SetVariableRequest(session_id=sid, name_or_id=name, value=value))


@FUZZ_SETTINGS
@given(
    updates=st.lists(st.tuples(texts, values, st.none() | st.integers(0, 2**64 - 1)), max_size=6),
    atomic=st.booleans(),
)
def test_random_batches_never_yield_internal(fuzz, updates, atomic):
    stub, sid = fuzz
    request = pb.SetVariablesRequest(
        session_id=sid,
        updates=[pb.VariableUpdate(name_or_id=n, value=v, expected_version=e) for n, v, e in updates],
        atomic=atomic,
    )
    _never_internal(stub.SetVariables, request)


@FUZZ_SETTINGS
@given(
    name=texts,
    type_number=st.integers(-3, 12),
    value=values,
    constraints=constraints,
    meta=metadata,
    description=st.text(max_size=20),
)
def test_random_registrations_never_yield_internal(
    fuzz, name, type_number, value, constraints, meta, description
):
    stub, sid = fuzz
    request = pb.RegisterVariableRequest(
        session_id=sid,
        name=name,
        type=type_number,
        value=value,
        constraints=constraints,
        metadata=meta,
        description=description,
    )
    _never_internal(stub.RegisterVariable, request)
    if name not in {"f", "i", "s", "c", "e", "t"}:
        # Keep the session small: what registered is removed again (it may not exist: that is fine).
        _never_internal(stub.DeleteVariable, pb.DeleteVariableRequest(session_id=sid, name_or_id=name or "x"))


@FUZZ_SETTINGS
@given(session_id=st.text(max_size=40), ttl=st.integers(0, 2**32 - 1), meta=metadata)
def test_random_sessions_never_yield_internal(fuzz, session_id, ttl, meta):
    stub, _ = fuzz
    _never_internal(
        stub.CreateSession, pb.CreateSessionRequest(session_id=session_id, ttl_seconds=ttl, metadata=meta)
    )
    _never_internal(stub.GetSession, pb.GetSessionRequest(session_id=session_id))
    _never_internal(stub.DeleteSession, pb.DeleteSessionRequest(session_id=session_id))


@FUZZ_SETTINGS
@given(refs=st.lists(texts, max_size=6), pattern=texts)
def test_random_reads_never_yield_internal(fuzz, refs, pattern):
    stub, sid = fuzz
    _never_internal(stub.GetVariables, pb.GetVariablesRequest(session_id=sid, names_or_ids=refs))
    _never_internal(stub.ListVariables, pb.ListVariablesRequest(session_id=sid, pattern=pattern))
    for ref in refs[:2]:
        _never_internal(stub.GetVariable, pb.GetVariableRequest(session_id=sid, name_or_id=ref))


def test_the_fuzzed_session_still_holds_valid_values(fuzz):
    """Whatever the fuzzers sent, what is stored still obeys its constraints."""
    stub, sid = fuzz
    by_name = {v.name: v for v in stub.ListVariables(pb.ListVariablesRequest(session_id=sid)).variables}
    assert -10 <= by_name["f"].value.float_value <= 10
    assert not math.isnan(by_name["f"].value.float_value)
    assert -10 <= by_name["i"].value.integer_value <= 10
    assert by_name["s"].value.string_value.startswith("a")
    assert by_name["c"].value.choice_value == "a"


def test_a_pathological_pattern_is_refused_instead_of_freezing_the_frontend(stub, session_id):
    create_session(stub, session_id)
    catastrophic = "^(a|a)*$"  # exponential backtracking on "aaa...b"
    register(
        stub,
        session_id,
        "s",
        pb.VARIABLE_TYPE_STRING,
        pb.Value(string_value="aaa"),
        pb.Constraints(pattern=catastrophic),
    )
    error = rpc_error(
        stub.SetVariable,
        pb.SetVariableRequest(
            session_id=session_id, name_or_id="s", value=pb.Value(string_value="a" * 60 + "b")
        ),
    )
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, message("pattern_too_slow", pattern=catastrophic))
    # The frontend is still answering, and the value did not change.
    assert get(stub, session_id, "s").value.string_value == "aaa"
