"""Every type and constraint through real gRPC: valid values round-trip, each violation is
INVALID_ARGUMENT with the exact message of the shared MESSAGES table, and a failed update leaves the
value and the version as they were."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import grpc
import pytest

from tests.integration.helpers import (
    EventReader,
    assert_status,
    create_session,
    get,
    register,
    rpc_error,
    set_value,
)
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.types import message

INF = math.inf
NAN = math.nan


@dataclass(frozen=True)
class Kind:
    """A variable type with a valid initial value and the constraints it is registered with."""

    type: int
    initial: pb.Value
    constraints: pb.Constraints = field(default_factory=pb.Constraints)


def tensor(shape: list[int], values: list[float], dtype: str = "") -> pb.Value:
    return pb.Value(tensor_value=pb.Tensor(shape=shape, values=values, dtype=dtype))


def embedding(*values: float) -> pb.Value:
    return pb.Value(embedding_value=pb.FloatList(values=values))


KINDS = {
    "float": Kind(pb.VARIABLE_TYPE_FLOAT, pb.Value(float_value=0.5), pb.Constraints(min=0, max=1)),
    "integer": Kind(pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=5), pb.Constraints(min=0, max=10)),
    "string": Kind(
        pb.VARIABLE_TYPE_STRING,
        pb.Value(string_value="AB12"),
        pb.Constraints(min_length=3, max_length=8, pattern="^[A-Z]+[0-9]+$"),
    ),
    "string_enum": Kind(
        pb.VARIABLE_TYPE_STRING,
        pb.Value(string_value="red"),
        pb.Constraints(enum_values=["red", "green", "blue"]),
    ),
    "boolean": Kind(pb.VARIABLE_TYPE_BOOLEAN, pb.Value(bool_value=False)),
    "choice": Kind(
        pb.VARIABLE_TYPE_CHOICE,
        pb.Value(choice_value="adam"),
        pb.Constraints(choices=["adam", "sgd", "lion"]),
    ),
    "module": Kind(
        pb.VARIABLE_TYPE_MODULE,
        pb.Value(module_value="torch.nn"),
        pb.Constraints(allowed_modules=["torch.nn", "numpy"]),
    ),
    "module_free": Kind(pb.VARIABLE_TYPE_MODULE, pb.Value(module_value="anything.at.all")),
    "embedding": Kind(pb.VARIABLE_TYPE_EMBEDDING, embedding(0.1, 0.2, 0.3), pb.Constraints(dimensions=3)),
    "tensor": Kind(
        pb.VARIABLE_TYPE_TENSOR,
        tensor([2, 2], [1, 2, 3, 4], "float32"),
        pb.Constraints(shape=[2, 2], dtype="float32"),
    ),
    "tensor_int": Kind(
        pb.VARIABLE_TYPE_TENSOR, tensor([3], [1, 2, 3], "int32"), pb.Constraints(shape=[3], dtype="int32")
    ),
    "tensor_free": Kind(pb.VARIABLE_TYPE_TENSOR, tensor([2], [1.5, 2.5])),
}


def without_dtype(value: pb.Value) -> pb.Value:
    """The value with a tensor's dtype label cleared: the label does not survive storage (see
    test_a_tensor_keeps_its_dtype), the numbers and the shape must."""
    copy = pb.Value()
    copy.CopyFrom(value)
    if copy.WhichOneof("kind") == "tensor_value":
        copy.tensor_value.dtype = ""
    return copy


@pytest.fixture
def session(stub, session_id):
    create_session(stub, session_id)
    return session_id


def register_kind(stub, session: str, kind_name: str) -> pb.Variable:
    kind = KINDS[kind_name]
    return register(stub, session, kind_name, kind.type, kind.initial, kind.constraints)


# --- valid values ------------------------------------------------------------------------------

VALID = [
    ("float", pb.Value(float_value=0.0)),
    ("float", pb.Value(float_value=1.0)),
    ("float", pb.Value(float_value=0.123456789)),
    ("integer", pb.Value(integer_value=0)),
    ("integer", pb.Value(integer_value=10)),
    ("string", pb.Value(string_value="ABC1")),
    ("string", pb.Value(string_value="ZZZZZZZ9")),
    ("string_enum", pb.Value(string_value="blue")),
    ("boolean", pb.Value(bool_value=True)),
    ("choice", pb.Value(choice_value="lion")),
    ("module", pb.Value(module_value="numpy")),
    ("module_free", pb.Value(module_value="my.pkg.mod")),
    ("embedding", embedding(-1.5, 0.0, 1e300)),
    ("tensor", tensor([2, 2], [0.5, -1.5, 2.0, 3.25], "float32")),
    ("tensor_int", tensor([3], [-(2**31), 0, 2**31 - 1], "int32")),
    ("tensor_free", tensor([2, 3], [1, 2, 3, 4, 5, 6], "int64")),
    ("tensor_free", tensor([], [7.5], "float64")),
]


@pytest.mark.parametrize(("kind_name", "value"), VALID, ids=[f"{k}-{i}" for i, (k, _) in enumerate(VALID)])
def test_a_valid_value_is_stored_and_read_back(stub, session, kind_name, value):
    registered = register_kind(stub, session, kind_name)
    response = set_value(stub, session, kind_name, value)
    assert response.version == 1
    current = get(stub, session, registered.id)
    assert current.version == 1
    assert without_dtype(current.value) == without_dtype(value)
    assert current.type == KINDS[kind_name].type
    assert current.constraints == KINDS[kind_name].constraints


def test_each_type_registers_with_its_initial_value(stub, session):
    for kind_name, kind in KINDS.items():
        variable = register_kind(stub, session, kind_name)
        assert without_dtype(variable.value) == without_dtype(kind.initial), kind_name
        assert without_dtype(get(stub, session, kind_name).value) == without_dtype(kind.initial), kind_name


def test_tensor_without_dtype_is_stored_as_float64(stub, session):
    register_kind(stub, session, "tensor_free")
    set_value(stub, session, "tensor_free", tensor([2], [1.5, 2.5]))
    assert get(stub, session, "tensor_free").value == tensor([2], [1.5, 2.5], "float64")


def test_unbounded_floats_accept_infinities_and_nan(stub, session):
    register(stub, session, "free", pb.VARIABLE_TYPE_FLOAT, pb.Value(float_value=INF))
    assert get(stub, session, "free").value.float_value == INF
    set_value(stub, session, "free", pb.Value(float_value=-INF))
    assert get(stub, session, "free").value.float_value == -INF
    set_value(stub, session, "free", pb.Value(float_value=NAN))
    assert math.isnan(get(stub, session, "free").value.float_value)


def test_extreme_integers_round_trip(stub, session):
    register(stub, session, "big", pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=2**63 - 1))
    assert get(stub, session, "big").value.integer_value == 2**63 - 1
    set_value(stub, session, "big", pb.Value(integer_value=-(2**63)))
    assert get(stub, session, "big").value.integer_value == -(2**63)


def test_unicode_strings_round_trip(stub, session):
    text = "héllo wörld ✓ 🧪 \u0000 end"
    register(stub, session, "s", pb.VARIABLE_TYPE_STRING, pb.Value(string_value=text))
    assert get(stub, session, "s").value.string_value == text


def test_an_empty_string_is_a_value(stub, session):
    register(stub, session, "s", pb.VARIABLE_TYPE_STRING, pb.Value(string_value=""))
    current = get(stub, session, "s")
    assert current.value.WhichOneof("kind") == "string_value"
    assert current.value.string_value == ""


# --- violations --------------------------------------------------------------------------------

VIOLATIONS = [
    # float
    ("float", pb.Value(float_value=1.5), message("above_max", value=1.5, max=1.0)),
    ("float", pb.Value(float_value=-0.5), message("below_min", value=-0.5, min=0.0)),
    ("float", pb.Value(float_value=NAN), message("not_finite", value=NAN)),
    ("float", pb.Value(float_value=INF), message("not_finite", value=INF)),
    ("float", pb.Value(float_value=-INF), message("not_finite", value=-INF)),
    # integer
    ("integer", pb.Value(integer_value=11), message("above_max", value=11, max=10)),
    ("integer", pb.Value(integer_value=-1), message("below_min", value=-1, min=0)),
    ("integer", pb.Value(integer_value=2**63 - 1), message("above_max", value=2**63 - 1, max=10)),
    # string
    ("string", pb.Value(string_value="A1"), message("too_short", min_length=3, length=2)),
    ("string", pb.Value(string_value="ABCDEFGH9"), message("too_long", max_length=8, length=9)),
    ("string", pb.Value(string_value="abc1"), message("pattern", pattern="^[A-Z]+[0-9]+$")),
    ("string_enum", pb.Value(string_value="purple"), message("not_in_enum", options="red, green, blue")),
    ("string_enum", pb.Value(string_value="Red"), message("not_in_enum", options="red, green, blue")),
    # choice
    ("choice", pb.Value(choice_value="rmsprop"), message("not_in_enum", options="adam, sgd, lion")),
    ("choice", pb.Value(choice_value=""), message("not_in_enum", options="adam, sgd, lion")),
    # module
    (
        "module",
        pb.Value(module_value="os"),
        message("module_not_allowed", module="os", allowed="torch.nn, numpy"),
    ),
    ("module", pb.Value(module_value=""), message("module_empty")),
    ("module_free", pb.Value(module_value=""), message("module_empty")),
    # embedding
    ("embedding", embedding(1, 2), message("dimension_mismatch", expected=3, actual=2)),
    ("embedding", embedding(1, 2, 3, 4), message("dimension_mismatch", expected=3, actual=4)),
    ("embedding", embedding(), message("embedding_empty")),
    ("embedding", embedding(1, NAN, 3), message("embedding_item", value=NAN, index=1)),
    ("embedding", embedding(1, 2, -INF), message("embedding_item", value=-INF, index=2)),
    # tensor
    (
        "tensor",
        tensor([2, 2], [1, 2, 3], "float32"),
        message("tensor_size", shape=[2, 2], expected=4, actual=3),
    ),
    ("tensor", tensor([4], [1, 2, 3, 4], "float32"), message("shape_mismatch", expected=[2, 2], actual=[4])),
    ("tensor", tensor([2, 2], [1, NAN, 3, 4], "float32"), message("tensor_item", value=NAN)),
    ("tensor", tensor([2, 2], [1, 2, 3, INF], "float32"), message("tensor_item", value=INF)),
    ("tensor", tensor([2, 0], [], "float32"), message("tensor_empty_dim", shape=[2, 0])),
    (
        "tensor",
        tensor([2, 2], [1, 2, 3, 4], "complex64"),
        message("bad_dtype", dtype="complex64", options="float32, float64, int32, int64"),
    ),
    ("tensor_int", tensor([3], [1, 2.5, 3], "int32"), message("tensor_not_whole", dtype="int32", value=2.5)),
    (
        "tensor_int",
        tensor([3], [1, 2, 2**31], "int32"),
        message("tensor_int_range", value=2**31, dtype="int32"),
    ),
    ("tensor_int", tensor([3], [1.5, 2, 3], ""), message("tensor_not_whole", dtype="int32", value=1.5)),
]


@pytest.mark.parametrize(
    ("kind_name", "bad", "expected"),
    VIOLATIONS,
    ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(VIOLATIONS)],
)
def test_a_violation_is_invalid_argument_and_changes_nothing(stub, session, kind_name, bad, expected):
    registered = register_kind(stub, session, kind_name)
    set_value(stub, session, kind_name, KINDS[kind_name].initial)  # version 1
    before = get(stub, session, kind_name)
    revision = stub.GetSession(pb.GetSessionRequest(session_id=session)).revision

    error = rpc_error(
        stub.SetVariable, pb.SetVariableRequest(session_id=session, name_or_id=kind_name, value=bad)
    )

    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, expected)
    after = get(stub, session, registered.id)
    assert after == before
    assert after.version == 1
    assert stub.GetSession(pb.GetSessionRequest(session_id=session)).revision == revision


@pytest.mark.parametrize(
    ("kind_name", "bad", "expected"),
    VIOLATIONS,
    ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(VIOLATIONS)],
)
def test_a_violating_initial_value_registers_nothing(stub, session, kind_name, bad, expected):
    kind = KINDS[kind_name]
    request = pb.RegisterVariableRequest(
        session_id=session, name=kind_name, type=kind.type, value=bad, constraints=kind.constraints
    )
    assert_status(rpc_error(stub.RegisterVariable, request), grpc.StatusCode.INVALID_ARGUMENT, expected)
    error = rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=session, name_or_id=kind_name))
    assert_status(error, grpc.StatusCode.NOT_FOUND, f"Variable not found: {kind_name}")
    assert stub.GetSession(pb.GetSessionRequest(session_id=session)).revision == 0


# --- the value's oneof must be the type's ------------------------------------------------------

ONEOF_OF = {
    pb.VARIABLE_TYPE_FLOAT: "float_value",
    pb.VARIABLE_TYPE_INTEGER: "integer_value",
    pb.VARIABLE_TYPE_STRING: "string_value",
    pb.VARIABLE_TYPE_BOOLEAN: "bool_value",
    pb.VARIABLE_TYPE_CHOICE: "choice_value",
    pb.VARIABLE_TYPE_MODULE: "module_value",
    pb.VARIABLE_TYPE_EMBEDDING: "embedding_value",
    pb.VARIABLE_TYPE_TENSOR: "tensor_value",
}
SAMPLE_OF = {
    "float_value": pb.Value(float_value=0.5),
    "integer_value": pb.Value(integer_value=5),
    "string_value": pb.Value(string_value="AB12"),
    "bool_value": pb.Value(bool_value=True),
    "choice_value": pb.Value(choice_value="adam"),
    "module_value": pb.Value(module_value="numpy"),
    "embedding_value": embedding(0.1, 0.2, 0.3),
    "tensor_value": tensor([2, 2], [1, 2, 3, 4], "float32"),
}
TYPE_WORD = {
    pb.VARIABLE_TYPE_FLOAT: "float",
    pb.VARIABLE_TYPE_INTEGER: "integer",
    pb.VARIABLE_TYPE_STRING: "string",
    pb.VARIABLE_TYPE_BOOLEAN: "boolean",
    pb.VARIABLE_TYPE_CHOICE: "choice",
    pb.VARIABLE_TYPE_MODULE: "module",
    pb.VARIABLE_TYPE_EMBEDDING: "embedding",
    pb.VARIABLE_TYPE_TENSOR: "tensor",
}


@pytest.mark.parametrize(
    "kind_name", ["float", "integer", "string", "boolean", "choice", "module", "embedding", "tensor"]
)
def test_a_value_in_another_types_field_is_rejected(stub, session, kind_name):
    kind = KINDS[kind_name]
    register_kind(stub, session, kind_name)
    word = TYPE_WORD[kind.type]
    article = "an" if word[0] in "aeiou" else "a"
    for field_name, value in SAMPLE_OF.items():
        if field_name == ONEOF_OF[kind.type]:
            continue
        error = rpc_error(
            stub.SetVariable, pb.SetVariableRequest(session_id=session, name_or_id=kind_name, value=value)
        )
        expected = message("wrong_kind", article=article, type=word, kind=field_name)
        assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, expected)
    current = get(stub, session, kind_name)
    assert current.version == 0
    assert without_dtype(current.value) == without_dtype(kind.initial)


@pytest.mark.parametrize(
    ("value", "field_name"),
    [
        (pb.Value(float_value=3.0), "float_value"),
        (pb.Value(float_value=1.5), "float_value"),
        (pb.Value(bool_value=True), "bool_value"),
    ],
    ids=["whole-float", "fraction", "bool"],
)
def test_an_integer_variable_takes_only_the_integer_field_on_the_wire(stub, session, value, field_name):
    """On the wire the oneof is the type (invariant 7): 3.0 and True arrive in other fields. The
    type module's own coercion (3.0 -> 3, True rejected) is covered in tests/unit/test_types.py."""
    register_kind(stub, session, "integer")
    error = rpc_error(
        stub.SetVariable, pb.SetVariableRequest(session_id=session, name_or_id="integer", value=value)
    )
    assert_status(
        error,
        grpc.StatusCode.INVALID_ARGUMENT,
        message("wrong_kind", article="an", type="integer", kind=field_name),
    )
    assert get(stub, session, "integer").value.integer_value == 5


def test_an_integer_tensor_accepts_whole_doubles(stub, session):
    register_kind(stub, session, "tensor_int")
    set_value(stub, session, "tensor_int", tensor([3], [3.0, -4.0, 0.0], "int32"))
    assert without_dtype(get(stub, session, "tensor_int").value) == tensor([3], [3, -4, 0])


@pytest.mark.parametrize(
    ("kind_name", "value"),
    [
        ("tensor", tensor([2, 2], [0.5, 1, 2, 3], "float32")),
        ("tensor_int", tensor([3], [1, 2, 3], "int32")),
    ],
    ids=["float32", "int32"],
)
def test_a_constrained_tensor_keeps_its_dtype_in_reads_and_events(stub, session, kind_name, value):
    register_kind(stub, session, kind_name)
    watch = EventReader(stub, session, from_now=True)
    try:
        watch.until_caught_up()
        set_value(stub, session, kind_name, value)
        event = watch.next()
    finally:
        watch.close()
    assert get(stub, session, kind_name).value.tensor_value.dtype == value.tensor_value.dtype
    assert event is not None
    assert event.changes[0].value.tensor_value.dtype == value.tensor_value.dtype


@pytest.mark.parametrize(
    "sent",
    [tensor([2], [1, 2], "int32"), tensor([2], [1.5, 2], "float32")],
    ids=["whole-values", "fractional-values"],
)
def test_an_unconstrained_tensor_is_float64(stub, session, sent):
    # Documented: without a dtype constraint a tensor holds float64 values; constrain dtype to pin it.
    register_kind(stub, session, "tensor_free")
    set_value(stub, session, "tensor_free", sent)
    assert get(stub, session, "tensor_free").value.tensor_value.dtype == "float64"


# --- NaN and infinities against every numeric bound --------------------------------------------


@pytest.mark.parametrize(
    "constraints",
    [pb.Constraints(min=0), pb.Constraints(max=0), pb.Constraints(min=-INF), pb.Constraints(max=INF)],
    ids=["min", "max", "min-minus-inf", "max-plus-inf"],
)
@pytest.mark.parametrize("bad", [NAN, INF, -INF], ids=["nan", "inf", "minus-inf"])
def test_nan_and_infinities_never_pass_a_bound(stub, session, constraints, bad):
    register(stub, session, "x", pb.VARIABLE_TYPE_FLOAT, pb.Value(float_value=0.0), constraints)
    error = rpc_error(
        stub.SetVariable,
        pb.SetVariableRequest(session_id=session, name_or_id="x", value=pb.Value(float_value=bad)),
    )
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, message("not_finite", value=bad))
    assert get(stub, session, "x").value.float_value == 0.0


def test_a_nan_bound_is_rejected_at_registration(stub, session):
    request = pb.RegisterVariableRequest(
        session_id=session,
        name="x",
        type=pb.VARIABLE_TYPE_FLOAT,
        value=pb.Value(float_value=0.0),
        constraints=pb.Constraints(max=NAN),
    )
    error = rpc_error(stub.RegisterVariable, request)
    assert_status(
        error,
        grpc.StatusCode.INVALID_ARGUMENT,
        message("bad_constraint", key="max", problem="must be a number", value=NAN),
    )
