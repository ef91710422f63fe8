"""Unit tests of unified_bridge.types: the one type system the server, SDK and local backend share."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from unified_bridge import types
from unified_bridge.errors import ValidationError
from unified_bridge.proto import unified_bridge_pb2 as pb2
from unified_bridge.types import (
    MESSAGES,
    VariableType,
    constraints_from_proto,
    constraints_to_proto,
    decode_value,
    encode_value,
    infer_type,
    message,
    new_variable_id,
    normalize_value,
    validate_constraints,
    validate_metadata,
    validate_name,
    validate_session_id,
    value_from_proto,
    value_to_proto,
)

T = VariableType
INF = float("inf")
NAN = float("nan")


def fails(text: str) -> Any:
    """pytest.raises for a ValidationError whose message is exactly ``text``."""
    return pytest.raises(ValidationError, match=f"^{re.escape(text)}$")


@dataclass
class _Dtype:
    name: str

    @property
    def kind(self) -> str:
        return {"bool": "b", "int32": "i", "int64": "i"}.get(self.name, "f")


class FakeArray:
    """Just enough of numpy's ndarray/scalar protocol (tolist, ndim, dtype) to test duck typing."""

    def __init__(self, data: Any, dtype: str = "float64") -> None:
        self._data = data
        self.dtype = _Dtype(dtype)
        self.ndim = 0
        node = data
        while isinstance(node, list):
            self.ndim += 1
            node = node[0]

    def tolist(self) -> Any:
        return self._data

    def __float__(self) -> float:
        return float(self._data)


# --- public surface ----------------------------------------------------------------------------


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 enforces: CONSTANTS, then Classes, then functions, each alphabetical.
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_complete() -> None:
    assert types.__all__ == sorted(types.__all__, key=_isort_key)
    for name in types.__all__:
        assert hasattr(types, name)


def test_messages_table_has_the_documented_wording() -> None:
    assert MESSAGES["above_max"] == "value {value} is above maximum {max}"
    assert MESSAGES["below_min"] == "value {value} is below minimum {min}"
    assert MESSAGES["not_finite"] == "value {value} is not a finite number"
    assert MESSAGES["too_short"] == "must be at least {min_length} characters, got {length}"
    assert MESSAGES["too_long"] == "must be at most {max_length} characters, got {length}"
    assert MESSAGES["pattern"] == "must match pattern: {pattern}"
    assert MESSAGES["not_in_enum"] == "must be one of: {options}"
    assert MESSAGES["cannot_convert"] == "Cannot convert {value!r} to {type}"
    assert message("variable_not_found", ref="x") == "Variable not found: x"
    assert message("session_not_found", session_id="s1") == "Session not found: s1"
    assert message("cannot_convert", value="abc", type=T.INTEGER) == "Cannot convert 'abc' to integer"
    with pytest.raises(TypeError):
        MESSAGES["above_max"] = "x"  # type: ignore[index]


# --- VariableType ------------------------------------------------------------------------------


@pytest.mark.parametrize("var_type", list(T))
def test_variable_type_proto_round_trip(var_type: VariableType) -> None:
    number = var_type.to_proto()
    assert number == getattr(pb2, f"VARIABLE_TYPE_{var_type.name}")
    assert T.from_proto(number) is var_type
    assert T.parse(number) is var_type
    assert T.parse(var_type.value) is var_type
    assert T.parse(var_type.name) is var_type
    assert T.parse(var_type) is var_type


def test_variable_type_is_a_str() -> None:
    assert isinstance(T.FLOAT, str)
    assert {"float": 1}[T.FLOAT] == 1  # usable wherever the plain string is
    assert f"{T.INTEGER}" == "integer"


@pytest.mark.parametrize("bad", [0, 99, -1])
def test_from_proto_rejects_unspecified_and_unknown(bad: int) -> None:
    with fails(f"unknown variable type: {bad}"):
        T.from_proto(bad)


@pytest.mark.parametrize("bad", ["double", "", True, 0, 1.0])
def test_parse_rejects_unknown(bad: Any) -> None:
    with pytest.raises(ValidationError, match="unknown variable type"):
        T.parse(bad)


# --- float -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(1, 1.0), (2.5, 2.5), ("3.25", 3.25), (" 4 ", 4.0), (Decimal("0.5"), 0.5), (Fraction(1, 4), 0.25)],
)
def test_float_accepts_numbers_and_numeric_strings(raw: Any, expected: float) -> None:
    result = normalize_value(T.FLOAT, raw)
    assert result == expected
    assert type(result) is float


def test_float_accepts_numpy_like_scalars() -> None:
    assert normalize_value(T.FLOAT, FakeArray(1.5)) == 1.5


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("abc", "Cannot convert 'abc' to float"),
        (True, "Cannot convert True to float"),
        (None, "Cannot convert None to float"),
        ([1.0], "Cannot convert [1.0] to float"),
        (b"1", "Cannot convert b'1' to float"),
        (FakeArray(True, "bool"), "Cannot convert"),
    ],
)
def test_float_rejects_non_numbers(raw: Any, text: str) -> None:
    with pytest.raises(ValidationError, match=f"^{re.escape(text)}"):
        normalize_value(T.FLOAT, raw)


def test_float_bounds() -> None:
    bounds = {"min": 0, "max": 10}
    assert normalize_value(T.FLOAT, 0, bounds) == 0.0
    assert normalize_value(T.FLOAT, 10, bounds) == 10.0
    with fails("value 10.5 is above maximum 10"):
        normalize_value(T.FLOAT, 10.5, bounds)
    with fails("value -0.5 is below minimum 0"):
        normalize_value(T.FLOAT, -0.5, bounds)


@pytest.mark.parametrize("raw", [NAN, INF, -INF, "nan", "inf"])
@pytest.mark.parametrize("bounds", [{"min": 0}, {"max": 0}, {"min": -1, "max": 1}])
def test_non_finite_never_slips_past_a_bound(raw: Any, bounds: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match=r"^value (nan|inf|-inf) is not a finite number$"):
        normalize_value(T.FLOAT, raw, bounds)


@pytest.mark.parametrize("raw", [NAN, INF, -INF])
def test_non_finite_is_allowed_without_bounds(raw: float) -> None:
    result = normalize_value(T.FLOAT, raw, {})
    assert math.isnan(result) if math.isnan(raw) else result == raw


# --- integer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(3, 3), (3.0, 3), ("42", 42), ("-7", -7), (-0.0, 0)])
def test_integer_accepts(raw: Any, expected: int) -> None:
    result = normalize_value(T.INTEGER, raw)
    assert result == expected
    assert type(result) is int


def test_integer_accepts_numpy_like_ints() -> None:
    class NpInt:
        def __index__(self) -> int:
            return 5

    assert normalize_value(T.INTEGER, NpInt()) == 5


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (1.5, "Cannot convert 1.5 to integer"),
        (True, "Cannot convert True to integer"),
        (False, "Cannot convert False to integer"),
        ("abc", "Cannot convert 'abc' to integer"),
        ("1.5", "Cannot convert '1.5' to integer"),
        (NAN, "Cannot convert nan to integer"),
        (INF, "Cannot convert inf to integer"),
        (None, "Cannot convert None to integer"),
    ],
)
def test_integer_rejects(raw: Any, text: str) -> None:
    with fails(text):
        normalize_value(T.INTEGER, raw)


def test_integer_bounds_and_range() -> None:
    with fails("value 11 is above maximum 10"):
        normalize_value(T.INTEGER, 11, {"max": 10})
    with fails("value -1 is below minimum 0"):
        normalize_value(T.INTEGER, -1, {"min": 0})
    assert normalize_value(T.INTEGER, 5, {"min": 4.5, "max": 5.0}) == 5
    with pytest.raises(ValidationError, match="64-bit"):
        normalize_value(T.INTEGER, 2**63)
    assert normalize_value(T.INTEGER, -(2**63)) == -(2**63)


# --- string, boolean, choice, module -----------------------------------------------------------


def test_string_constraints() -> None:
    constraints = {"min_length": 2, "max_length": 4, "pattern": "^[a-z]+$"}
    assert normalize_value(T.STRING, "abc", constraints) == "abc"
    with fails("must be at least 2 characters, got 1"):
        normalize_value(T.STRING, "a", constraints)
    with fails("must be at most 4 characters, got 5"):
        normalize_value(T.STRING, "abcde", constraints)
    with fails("must match pattern: ^[a-z]+$"):
        normalize_value(T.STRING, "AB", constraints)
    with fails("must be one of: low, high"):
        normalize_value(T.STRING, "mid", {"enum": ["low", "high"]})
    assert normalize_value(T.STRING, "high", {"enum": ["low", "high"]}) == "high"


def test_string_length_counts_characters_not_bytes() -> None:
    assert normalize_value(T.STRING, "ééé", {"max_length": 3}) == "ééé"


def test_string_pattern_is_searched_not_matched() -> None:
    assert normalize_value(T.STRING, "xxabcxx", {"pattern": "abc"}) == "xxabcxx"


@pytest.mark.parametrize(
    ("raw", "text"), [(42, "Cannot convert 42 to string"), (None, "Cannot convert None to string")]
)
def test_string_rejects_non_str(raw: Any, text: str) -> None:
    with fails(text):
        normalize_value(T.STRING, raw)


def test_string_rejects_lone_surrogates() -> None:
    with pytest.raises(ValidationError, match="not valid Unicode"):
        normalize_value(T.STRING, "\ud800")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("FALSE", False), (" True ", True)],
)
def test_boolean_accepts(raw: Any, expected: bool) -> None:
    assert normalize_value(T.BOOLEAN, raw) is expected


def test_boolean_accepts_numpy_like_bool() -> None:
    assert normalize_value(T.BOOLEAN, FakeArray(True, "bool")) is True


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (2, "Cannot convert 2 to boolean"),
        ("yes", "Cannot convert 'yes' to boolean"),
        (1.0, "Cannot convert 1.0 to boolean"),
    ],
)
def test_boolean_rejects(raw: Any, text: str) -> None:
    with fails(text):
        normalize_value(T.BOOLEAN, raw)


def test_choice() -> None:
    constraints = {"choices": ["red", "green", "blue"]}
    assert normalize_value(T.CHOICE, "green", constraints) == "green"
    with fails("must be one of: red, green, blue"):
        normalize_value(T.CHOICE, "pink", constraints)
    with fails("Cannot convert 1 to choice"):
        normalize_value(T.CHOICE, 1, constraints)
    with fails("constraint 'choices' is required for type choice"):
        normalize_value(T.CHOICE, "red")


def test_module() -> None:
    assert normalize_value(T.MODULE, "pkg.Model") == "pkg.Model"
    assert normalize_value(T.MODULE, "A", {"allowed_modules": ["A", "B"]}) == "A"
    with fails("module 'X' is not allowed; allowed: A, B"):
        normalize_value(T.MODULE, "X", {"allowed_modules": ["A", "B"]})
    with fails("module name is empty"):
        normalize_value(T.MODULE, "")
    with fails("Cannot convert 3 to module"):
        normalize_value(T.MODULE, 3)


# --- embedding ---------------------------------------------------------------------------------


def test_embedding_accepts_sequences() -> None:
    assert normalize_value(T.EMBEDDING, [1, 2.5]) == [1.0, 2.5]
    assert normalize_value(T.EMBEDDING, (0.5,)) == [0.5]
    assert normalize_value(T.EMBEDDING, FakeArray([1.0, 2.0, 3.0]), {"dimensions": 3}) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("raw", "constraints", "text"),
    [
        ([1.0, 2.0], {"dimensions": 3}, "embedding must have 3 dimensions, got 2"),
        ([], {}, "embedding is empty"),
        ([1.0, NAN], {}, "embedding values must be finite numbers, got nan at index 1"),
        ([1.0, INF], {}, "embedding values must be finite numbers, got inf at index 1"),
        ([1.0, "2"], {}, "embedding values must be finite numbers, got '2' at index 1"),
        ([True], {}, "embedding values must be finite numbers, got True at index 0"),
        ([[1.0]], {}, "embedding values must be finite numbers, got [1.0] at index 0"),
        ("abc", {}, "Cannot convert 'abc' to embedding"),
        (1.0, {}, "Cannot convert 1.0 to embedding"),
    ],
)
def test_embedding_rejects(raw: Any, constraints: dict[str, Any], text: str) -> None:
    with fails(text):
        normalize_value(T.EMBEDDING, raw, constraints)


def test_long_values_are_cut_short_in_messages() -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_value(T.INTEGER, "x" * 10_000)
    assert len(str(caught.value)) < 120


# --- tensor ------------------------------------------------------------------------------------


def test_tensor_forms() -> None:
    nested = [[1, 2, 3], [4, 5, 6]]
    expected = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert normalize_value(T.TENSOR, nested, {"shape": [2, 3]}) == expected
    assert normalize_value(T.TENSOR, ((1, 2, 3), (4, 5, 6))) == expected
    assert normalize_value(T.TENSOR, FakeArray(nested)) == expected
    assert normalize_value(T.TENSOR, {"shape": [2, 3], "values": [1, 2, 3, 4, 5, 6]}) == expected
    assert normalize_value(T.TENSOR, [1, 2]) == [1.0, 2.0]


def test_tensor_int_dtypes_keep_ints() -> None:
    result = normalize_value(T.TENSOR, [[1.0, 2.0]], {"dtype": "int32"})
    assert result == [[1, 2]]
    assert all(type(v) is int for v in result[0])
    assert normalize_value(T.TENSOR, FakeArray([[1, 2]], "int64")) == [[1, 2]]
    with fails("tensor of dtype int64 needs whole numbers, got 1.5"):
        normalize_value(T.TENSOR, [1.5], {"dtype": "int64"})
    with fails("tensor value 2147483648 is out of range for dtype int32"):
        normalize_value(T.TENSOR, [2**31], {"dtype": "int32"})


def test_tensor_scalar_only_without_shape_or_with_empty_shape() -> None:
    assert normalize_value(T.TENSOR, 3) == 3.0
    assert normalize_value(T.TENSOR, 3, {"shape": []}) == 3.0
    with fails("tensor must have shape [2], got []"):
        normalize_value(T.TENSOR, 3, {"shape": [2]})
    with fails("tensor must have shape [], got [1]"):
        normalize_value(T.TENSOR, [3], {"shape": []})


@pytest.mark.parametrize(
    ("raw", "constraints", "text"),
    [
        ([[1, 2], [3, 4], [5, 6]], {"shape": [2, 3]}, "tensor must have shape [2, 3], got [3, 2]"),
        ([[1, 2], [3]], {}, "tensor is not rectangular: every row at a level must have the same length"),
        ([[1, 2], 3], {}, "tensor is not rectangular: every row at a level must have the same length"),
        ([1, [2]], {}, "tensor is not rectangular: every row at a level must have the same length"),
        ([], {}, "tensor dimensions must be at least 1, got shape [0]"),
        ([[1], []], {}, "tensor is not rectangular: every row at a level must have the same length"),
        ([1, NAN], {}, "tensor values must be finite numbers, got nan"),
        (["a"], {}, "tensor values must be finite numbers, got 'a'"),
        ({"shape": [2, 2], "values": [1, 2, 3]}, {}, "tensor shape [2, 2] needs 4 values, got 3"),
        ({"values": [1], "dtype": "int32"}, {"dtype": "int64"}, "tensor must have dtype int64, got int32"),
        (
            {"values": [1], "dtype": "complex"},
            {},
            "unknown tensor dtype 'complex'; use one of: float32, float64, int32, int64",
        ),
        ("abc", {}, "Cannot convert 'abc' to tensor"),
    ],
)
def test_tensor_rejects(raw: Any, constraints: dict[str, Any], text: str) -> None:
    with fails(text):
        normalize_value(T.TENSOR, raw, constraints)


def test_tensor_too_deep_is_rejected_cheaply() -> None:
    deep: Any = 1.0
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(ValidationError, match="more than 32 dimensions"):
        normalize_value(T.TENSOR, deep)


def test_real_numpy_arrays() -> None:
    np = pytest.importorskip("numpy")
    assert normalize_value(T.EMBEDDING, np.array([1.0, 2.0])) == [1.0, 2.0]
    assert normalize_value(T.TENSOR, np.arange(6).reshape(2, 3)) == [[0, 1, 2], [3, 4, 5]]
    assert normalize_value(T.FLOAT, np.float32(0.5)) == 0.5
    assert normalize_value(T.INTEGER, np.int64(7)) == 7
    assert infer_type(np.zeros((2, 2))) is T.TENSOR
    assert infer_type(np.zeros(3)) is T.EMBEDDING
    assert infer_type(np.bool_(True)) is T.BOOLEAN


# --- constraints -------------------------------------------------------------------------------


def test_validate_constraints_normalizes() -> None:
    assert validate_constraints(T.FLOAT, None) == {}
    assert validate_constraints(T.FLOAT, {"min": 0, "max": None}) == {"min": 0}
    assert validate_constraints(T.CHOICE, {"choices": ("a", "b")}) == {"choices": ["a", "b"]}
    assert validate_constraints(T.TENSOR, {"shape": (2, 3), "dtype": "int32"}) == {
        "shape": [2, 3],
        "dtype": "int32",
    }
    assert validate_constraints(T.TENSOR, {"shape": []}) == {"shape": []}
    original = {"enum": ["a"], "pattern": "^a", "min_length": 1, "max_length": 1}
    result = validate_constraints(T.STRING, original)
    assert result == original
    assert result is not original
    assert validate_constraints("embedding", {"dimensions": 4}) == {"dimensions": 4}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("var_type", "constraints", "text"),
    [
        (T.INTEGER, {"pattern": "x"}, "constraint 'pattern' does not apply to type integer"),
        (T.BOOLEAN, {"min": 0}, "constraint 'min' does not apply to type boolean"),
        (T.STRING, {"choices": ["a"]}, "constraint 'choices' does not apply to type string"),
        (T.FLOAT, {"minimum": 0}, "unknown constraint 'minimum'"),
        (T.FLOAT, {"min": 2, "max": 1}, "constraint 'min' (2) is above 'max' (1)"),
        (T.FLOAT, {"min": True}, "constraint 'min' must be a number, got True"),
        (T.FLOAT, {"min": NAN}, "constraint 'min' must be a number, got nan"),
        (T.FLOAT, {"max": "3"}, "constraint 'max' must be a number, got '3'"),
        (T.STRING, {"min_length": -1}, "constraint 'min_length' must be between 0 and 4294967295, got -1"),
        (T.STRING, {"max_length": 1.5}, "constraint 'max_length' must be an integer, got 1.5"),
        (
            T.STRING,
            {"min_length": 3, "max_length": 2},
            "constraint 'min_length' (3) is above 'max_length' (2)",
        ),
        (T.STRING, {"enum": []}, "constraint 'enum' must be a non-empty list of strings, got []"),
        (T.STRING, {"enum": [1]}, "constraint 'enum' must be a non-empty list of strings, got [1]"),
        (T.CHOICE, {}, "constraint 'choices' is required for type choice"),
        (T.CHOICE, {"choices": []}, "constraint 'choices' must be a non-empty list of strings, got []"),
        (T.CHOICE, {"choices": "ab"}, "constraint 'choices' must be a non-empty list of strings, got 'ab'"),
        (T.CHOICE, {"choices": ["a", "a"]}, "constraint 'choices' must not repeat a value, got ['a', 'a']"),
        (
            T.MODULE,
            {"allowed_modules": [None]},
            "constraint 'allowed_modules' must be a non-empty list of strings, got [None]",
        ),
        (T.EMBEDDING, {"dimensions": 0}, "constraint 'dimensions' must be between 1 and 4294967295, got 0"),
        (T.TENSOR, {"shape": [2, 0]}, "constraint 'shape' must be between 1 and 4294967295, got 0"),
        (T.TENSOR, {"shape": 3}, "constraint 'shape' must be a list of integers >= 1, got 3"),
        (
            T.TENSOR,
            {"dtype": "float16"},
            "unknown tensor dtype 'float16'; use one of: float32, float64, int32, int64",
        ),
    ],
)
def test_validate_constraints_rejects(var_type: VariableType, constraints: dict[str, Any], text: str) -> None:
    with fails(text):
        validate_constraints(var_type, constraints)


def test_bad_pattern() -> None:
    with pytest.raises(ValidationError, match=r"^constraint 'pattern' is not a valid regular expression: "):
        validate_constraints(T.STRING, {"pattern": "("})


def test_constraints_must_be_a_mapping() -> None:
    with fails("constraints must be a mapping, got list"):
        validate_constraints(T.FLOAT, [("min", 1)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("var_type", "constraints"),
    [
        (T.FLOAT, {"min": -1.5, "max": 2.0}),
        (T.INTEGER, {"min": 0.0}),
        (T.STRING, {"min_length": 0, "max_length": 10, "pattern": "^a", "enum": ["a", "ab"]}),
        (T.CHOICE, {"choices": ["r", "g"]}),
        (T.MODULE, {"allowed_modules": ["m.A"]}),
        (T.EMBEDDING, {"dimensions": 3}),
        (T.TENSOR, {"shape": [2, 3], "dtype": "int32"}),
        (T.BOOLEAN, {}),
    ],
)
def test_constraints_proto_round_trip(var_type: VariableType, constraints: dict[str, Any]) -> None:
    validated = validate_constraints(var_type, constraints)
    message_ = constraints_to_proto(validated)
    assert constraints_from_proto(message_) == validated
    assert validate_constraints(var_type, constraints_from_proto(message_)) == validated


def test_constraints_to_proto_maps_enum_and_keeps_zero() -> None:
    message_ = constraints_to_proto({"enum": ["a"], "min_length": 0})
    assert list(message_.enum_values) == ["a"]
    assert message_.HasField("min_length")
    assert constraints_from_proto(pb2.Constraints()) == {}
    with fails("unknown constraint 'nope'"):
        constraints_to_proto({"nope": 1})


# --- wire and storage round trips --------------------------------------------------------------

ROUND_TRIP_CASES: list[tuple[VariableType, Any, dict[str, Any]]] = [
    (T.FLOAT, 0.1, {}),
    (T.FLOAT, -INF, {}),
    (T.INTEGER, -(2**63), {}),
    (T.INTEGER, 2**63 - 1, {}),
    (T.STRING, "héllo ☃", {}),
    (T.STRING, "", {}),
    (T.BOOLEAN, False, {}),
    (T.BOOLEAN, True, {}),
    (T.CHOICE, "b", {"choices": ["a", "b"]}),
    (T.MODULE, "pkg.mod.Class", {}),
    (T.EMBEDDING, [0.25, -1.0, 3.0], {"dimensions": 3}),
    (T.TENSOR, [[1.5, 2.0], [3.0, 4.0]], {}),
    (T.TENSOR, [[[1, 2]], [[3, 4]]], {"dtype": "int64"}),
    (T.TENSOR, [7, 8], {"dtype": "int32", "shape": [2]}),
    (T.TENSOR, 2.5, {}),
]


@pytest.mark.parametrize(("var_type", "raw", "constraints"), ROUND_TRIP_CASES)
def test_proto_round_trip(var_type: VariableType, raw: Any, constraints: dict[str, Any]) -> None:
    value = normalize_value(var_type, raw, constraints)
    decoded = value_from_proto(var_type, value_to_proto(var_type, value, constraints))
    assert decoded == value
    assert repr(decoded) == repr(value)  # same Python types too (int stays int, float stays float)


@pytest.mark.parametrize(("var_type", "raw", "constraints"), ROUND_TRIP_CASES)
def test_storage_round_trip(var_type: VariableType, raw: Any, constraints: dict[str, Any]) -> None:
    value = normalize_value(var_type, raw, constraints)
    data = encode_value(var_type, value, constraints)
    assert isinstance(data, bytes)
    decoded = decode_value(var_type, data)
    assert repr(decoded) == repr(value)


def test_proto_fields_per_type() -> None:
    assert value_to_proto(T.FLOAT, 1.0).WhichOneof("kind") == "float_value"
    assert value_to_proto(T.CHOICE, "a").WhichOneof("kind") == "choice_value"
    tensor = value_to_proto(T.TENSOR, [[1.0, 2.0, 3.0]]).tensor_value
    assert (list(tensor.shape), tensor.dtype, list(tensor.values)) == ([1, 3], "float64", [1.0, 2.0, 3.0])
    tensor = value_to_proto(T.TENSOR, [[1, 2]], {"dtype": "int32"}).tensor_value
    assert tensor.dtype == "int32"


def test_nan_round_trips() -> None:
    assert math.isnan(value_from_proto(T.FLOAT, value_to_proto(T.FLOAT, NAN)))
    assert math.isnan(decode_value(T.FLOAT, encode_value(T.FLOAT, NAN)))


def test_value_from_proto_checks_the_oneof() -> None:
    with fails("expected a float value, got string_value"):
        value_from_proto(T.FLOAT, pb2.Value(string_value="x"))
    with fails("expected an integer value, got float_value"):
        value_from_proto(T.INTEGER, pb2.Value(float_value=1.0))
    with fails("expected an embedding value, got tensor_value"):
        value_from_proto(T.EMBEDDING, pb2.Value(tensor_value=pb2.Tensor(shape=[1], values=[1.0])))
    with fails("value is required"):
        value_from_proto(T.FLOAT, pb2.Value())


def test_value_from_proto_checks_tensor_layout() -> None:
    with fails("tensor shape [2, 2] needs 4 values, got 3"):
        value_from_proto(T.TENSOR, pb2.Value(tensor_value=pb2.Tensor(shape=[2, 2], values=[1, 2, 3])))
    with fails("tensor dimensions must be at least 1, got shape [2, 0]"):
        value_from_proto(T.TENSOR, pb2.Value(tensor_value=pb2.Tensor(shape=[2, 0])))
    with pytest.raises(ValidationError, match="unknown tensor dtype 'bf16'"):
        value_from_proto(T.TENSOR, pb2.Value(tensor_value=pb2.Tensor(shape=[1], dtype="bf16", values=[1])))
    # An empty dtype is the default, float64.
    assert value_from_proto(T.TENSOR, pb2.Value(tensor_value=pb2.Tensor(shape=[1], values=[2]))) == [2.0]


def test_value_to_proto_rejects_unnormalized_values() -> None:
    with fails("Cannot convert 'abc' to float"):
        value_to_proto(T.FLOAT, "abc")


def test_tensor_storage_layout() -> None:
    data = encode_value(T.TENSOR, [[1.0, 2.0], [3.0, 4.0]])
    assert msgpack.unpackb(data) == {"s": [2, 2], "d": "float64", "v": [1.0, 2.0, 3.0, 4.0]}


@pytest.mark.parametrize(
    ("var_type", "payload"),
    [
        (T.INTEGER, True),
        (T.INTEGER, "1"),
        (T.BOOLEAN, 1),
        (T.STRING, 1),
        (T.FLOAT, "1.0"),
        (T.EMBEDDING, {"a": 1}),
        (T.TENSOR, [1, 2]),
        (T.TENSOR, {"s": [3], "d": "float64", "v": [1.0]}),
    ],
)
def test_decode_value_rejects_other_types(var_type: VariableType, payload: Any) -> None:
    with pytest.raises(ValidationError, match=f"^stored {var_type.value} value is corrupt: "):
        decode_value(var_type, msgpack.packb(payload, use_bin_type=True))


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x01\x02"])
def test_decode_value_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValidationError, match="is corrupt"):
        decode_value(T.INTEGER, data)


finite_floats = st.floats(allow_nan=False, allow_infinity=False)


@given(st.floats(allow_nan=False))
def test_float_round_trips_property(value: float) -> None:
    normalized = normalize_value(T.FLOAT, value)
    assert value_from_proto(T.FLOAT, value_to_proto(T.FLOAT, normalized)) == normalized
    assert decode_value(T.FLOAT, encode_value(T.FLOAT, normalized)) == normalized


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_round_trips_property(value: int) -> None:
    normalized = normalize_value(T.INTEGER, value)
    assert value_from_proto(T.INTEGER, value_to_proto(T.INTEGER, normalized)) == value
    assert decode_value(T.INTEGER, encode_value(T.INTEGER, normalized)) == value
    assert normalize_value(T.INTEGER, str(value)) == value


@given(st.text())
def test_string_round_trips_property(value: str) -> None:
    normalized = normalize_value(T.STRING, value)
    assert value_from_proto(T.STRING, value_to_proto(T.STRING, normalized)) == value
    assert decode_value(T.STRING, encode_value(T.STRING, normalized)) == value


@given(st.lists(finite_floats, min_size=1, max_size=64))
def test_embedding_round_trips_property(value: list[float]) -> None:
    normalized = normalize_value(T.EMBEDDING, value, {"dimensions": len(value)})
    assert value_from_proto(T.EMBEDDING, value_to_proto(T.EMBEDDING, normalized)) == value
    assert decode_value(T.EMBEDDING, encode_value(T.EMBEDDING, normalized)) == value


@given(
    st.lists(st.integers(min_value=1, max_value=4), min_size=0, max_size=3).flatmap(
        lambda shape: st.tuples(
            st.just(shape), st.lists(finite_floats, min_size=math.prod(shape), max_size=math.prod(shape))
        )
    )
)
def test_tensor_round_trips_property(case: tuple[list[int], list[float]]) -> None:
    shape, flat = case
    normalized = normalize_value(T.TENSOR, {"shape": shape, "values": flat}, {"shape": shape})
    assert value_from_proto(T.TENSOR, value_to_proto(T.TENSOR, normalized)) == normalized
    assert decode_value(T.TENSOR, encode_value(T.TENSOR, normalized)) == normalized
    # The nested form normalizes to itself.
    assert normalize_value(T.TENSOR, normalized, {"shape": shape}) == normalized


@given(st.floats(), st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_float_bounds_property(value: float, low: float, high: float) -> None:
    if low > high:
        low, high = high, low
    try:
        result = normalize_value(T.FLOAT, value, {"min": low, "max": high})
    except ValidationError:
        assert math.isnan(value) or math.isinf(value) or not low <= value <= high
    else:
        assert low <= result <= high


# --- infer_type --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, T.BOOLEAN),
        (False, T.BOOLEAN),
        (3, T.INTEGER),
        (3.0, T.FLOAT),
        ("x", T.STRING),
        ([1.0, 2], T.EMBEDDING),
        ((1.0,), T.EMBEDDING),
        ([[1.0], [2.0]], T.TENSOR),
        (FakeArray([1.0, 2.0]), T.EMBEDDING),
        (FakeArray([[1.0], [2.0]]), T.TENSOR),
        (FakeArray(1.5), T.FLOAT),
        (FakeArray(True, "bool"), T.BOOLEAN),
    ],
)
def test_infer_type(value: Any, expected: VariableType) -> None:
    assert infer_type(value) is expected


@pytest.mark.parametrize(
    ("value", "kind"), [({}, "dict"), ([], "list"), (None, "NoneType"), (["a"], "list"), ([True], "list")]
)
def test_infer_type_rejects(value: Any, kind: str) -> None:
    with fails(f"cannot infer a variable type for value of type {kind}"):
        infer_type(value)


# --- names, session ids, metadata --------------------------------------------------------------


@pytest.mark.parametrize("name", ["x", "_x", "learning_rate", "layer.0.weight", "a-b", "A9"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["a{b}", "a b", "x:y", "*", "9a", ".a", "-a", "a?", "a[1]", "ok\n", "é"])
def test_invalid_names(name: str) -> None:
    with fails(
        f"invalid variable name {name!r}: use letters, digits, '_', '.', '-' and start with a letter or '_'"
    ):
        validate_name(name)


def test_name_empty_too_long_and_not_str() -> None:
    with fails("variable name is empty"):
        validate_name("")
    assert validate_name("a" * 128) == "a" * 128
    with fails("variable name is too long: 129 characters, at most 128"):
        validate_name("a" * 129)
    with fails("variable name is too long: 5 characters, at most 4"):
        validate_name("abcde", max_length=4)
    with fails("variable name must be a string, got int"):
        validate_name(1)


@pytest.mark.parametrize(
    "session_id",
    [
        "s1",
        "9",
        "a.b-c_d",
        "550e8400-e29b-41d4-a716-446655440000",
        "tenant:42",
        "user/7",
        "run-2026-11-22T10:00",
        "équipe 北京",
        "{a}*?[b]%",
    ],
)
def test_valid_session_ids(session_id: str) -> None:
    assert validate_session_id(session_id) == session_id


@pytest.mark.parametrize("session_id", [" a", "a ", "a\n", "a\tb", "\x00", "a\u200bb", "\ud800"])
def test_invalid_session_ids(session_id: str) -> None:
    with fails(
        f"invalid session id {session_id!r}: use printable characters, without leading or trailing spaces"
    ):
        validate_session_id(session_id)


def test_session_id_empty_too_long_and_not_str() -> None:
    with fails("session id is empty"):
        validate_session_id("")
    with fails("session id is too long: 129 characters, at most 128"):
        validate_session_id("s" * 129)
    with fails("session id must be a string, got NoneType"):
        validate_session_id(None)


def test_metadata() -> None:
    assert validate_metadata(None) == {}
    original = {"owner": "me"}
    result = validate_metadata(original)
    assert result == original
    assert result is not original
    with fails("metadata keys and values must be strings, got 1"):
        validate_metadata({"a": 1})  # type: ignore[dict-item]
    with fails("metadata keys and values must be strings, got 1"):
        validate_metadata({1: "a"})  # type: ignore[dict-item]
    with fails("metadata keys must not be empty"):
        validate_metadata({"": "a"})
    with fails("metadata has 3 entries, at most 2"):
        validate_metadata({"a": "", "b": "", "c": ""}, max_entries=2)
    with fails("metadata is 5 bytes, at most 4"):
        validate_metadata({"é": "abc"}, max_bytes=4)
    with fails("metadata must be a mapping of strings to strings, got list"):
        validate_metadata([])  # type: ignore[arg-type]


def test_new_variable_id() -> None:
    first, second = new_variable_id("lr"), new_variable_id("lr")
    assert re.fullmatch(r"var_lr_[0-9a-f]{8}", first)
    assert first != second
    with pytest.raises(ValidationError):
        new_variable_id("a b")
