"""Private core of :mod:`unified_bridge.types`: the type enum, the message table and the validators.

Import from :mod:`unified_bridge.types`; this module only exists to keep that one small.
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from unified_bridge._patterns import PatternTooSlowError, pattern_matches
from unified_bridge.errors import SessionNotFoundError, ValidationError, VariableNotFoundError
from unified_bridge.proto import unified_bridge_pb2 as pb2

Constraints = dict[str, Any]

TENSOR_DTYPES: Final = frozenset({"float32", "float64", "int32", "int64"})
DEFAULT_TENSOR_DTYPE: Final = "float64"
# Integers travel as sint64 on the wire and as msgpack ints in Redis: both stop at 64 bits.
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# Tensor values travel as doubles, so integer tensors must stay exactly representable.
_INT_DTYPE_LIMITS: Final[Mapping[str, int]] = MappingProxyType({"int32": 2**31, "int64": 2**53})
# Deep nesting is never a real tensor; the cap keeps hostile input cheap to reject.
_MAX_TENSOR_NDIM: Final = 32
# Error messages quote user values; this keeps a huge value from producing a huge message.
_MAX_SHOWN_CHARS: Final = 80


class VariableType(enum.StrEnum):
    """The type of a variable; the string value is what the SDK and JSON use."""

    FLOAT = "float"
    INTEGER = "integer"
    STRING = "string"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    MODULE = "module"
    EMBEDDING = "embedding"
    TENSOR = "tensor"

    def to_proto(self) -> int:
        """The ``unified_bridge.v1.VariableType`` number, e.g. ``pb2.VARIABLE_TYPE_FLOAT``."""
        return _TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: int) -> VariableType:
        """The type for a protobuf enum number; UNSPECIFIED and unknown numbers are rejected."""
        try:
            return _FROM_PROTO[value]
        except (KeyError, TypeError):
            raise ValidationError(message("unknown_type", value=shown(value))) from None

    @classmethod
    def parse(cls, value: VariableType | str | int) -> VariableType:
        """The type for the enum itself, its value or name in any case (``"float"``, ``"FLOAT"``) or a
        proto number."""
        if isinstance(value, VariableType):
            return value
        if isinstance(value, str):
            key = value.strip().lower().removeprefix("variable_type_")
            try:
                return cls(key)
            except ValueError:
                raise ValidationError(message("unknown_type", value=shown(value))) from None
        if isinstance(value, int) and not isinstance(value, bool):
            return cls.from_proto(value)
        raise ValidationError(message("unknown_type", value=shown(value)))


_TO_PROTO: Final[Mapping[VariableType, int]] = MappingProxyType(
    {
        VariableType.FLOAT: pb2.VARIABLE_TYPE_FLOAT,
        VariableType.INTEGER: pb2.VARIABLE_TYPE_INTEGER,
        VariableType.STRING: pb2.VARIABLE_TYPE_STRING,
        VariableType.BOOLEAN: pb2.VARIABLE_TYPE_BOOLEAN,
        VariableType.CHOICE: pb2.VARIABLE_TYPE_CHOICE,
        VariableType.MODULE: pb2.VARIABLE_TYPE_MODULE,
        VariableType.EMBEDDING: pb2.VARIABLE_TYPE_EMBEDDING,
        VariableType.TENSOR: pb2.VARIABLE_TYPE_TENSOR,
    }
)
_FROM_PROTO: Final[Mapping[int, VariableType]] = MappingProxyType({v: k for k, v in _TO_PROTO.items()})

MESSAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        # Values
        "above_max": "value {value} is above maximum {max}",
        "below_min": "value {value} is below minimum {min}",
        "not_finite": "value {value} is not a finite number",
        "too_short": "must be at least {min_length} characters, got {length}",
        "too_long": "must be at most {max_length} characters, got {length}",
        "pattern": "must match pattern: {pattern}",
        "not_in_enum": "must be one of: {options}",
        "cannot_convert": "Cannot convert {value!r} to {type}",
        "int_out_of_range": "value {value} does not fit in a 64-bit integer",
        "value_required": "value is required",
        "not_utf8": "{type} value is not valid Unicode text (it holds a lone surrogate)",
        "wrong_kind": "expected {article} {type} value, got {kind}",
        "module_empty": "module name is empty",
        "module_not_allowed": "module {module!r} is not allowed; allowed: {allowed}",
        "embedding_empty": "embedding is empty",
        "embedding_item": "embedding values must be finite numbers, got {value!r} at index {index}",
        "dimension_mismatch": "embedding must have {expected} dimensions, got {actual}",
        "tensor_ragged": "tensor is not rectangular: every row at a level must have the same length",
        "tensor_empty_dim": "tensor dimensions must be at least 1, got shape {shape}",
        "tensor_too_deep": "tensor has more than {max_ndim} dimensions",
        "tensor_size": "tensor shape {shape} needs {expected} values, got {actual}",
        "tensor_item": "tensor values must be finite numbers, got {value!r}",
        "tensor_not_whole": "tensor of dtype {dtype} needs whole numbers, got {value!r}",
        "tensor_int_range": "tensor value {value} is out of range for dtype {dtype}",
        "shape_mismatch": "tensor must have shape {expected}, got {actual}",
        "dtype_mismatch": "tensor must have dtype {expected}, got {actual}",
        "bad_dtype": "unknown tensor dtype {dtype!r}; use one of: {options}",
        "corrupt_value": "stored {type} value is corrupt: {reason}",
        # Types and constraints
        "unknown_type": "unknown variable type: {value}",
        "cannot_infer": "cannot infer a variable type for value of type {kind}",
        "constraints_not_mapping": "constraints must be a mapping, got {kind}",
        "unknown_constraint": "unknown constraint {key!r}",
        "constraint_not_applicable": "constraint {key!r} does not apply to type {type}",
        "constraint_required": "constraint {key!r} is required for type {type}",
        "bad_constraint": "constraint {key!r} {problem}, got {value!r}",
        "min_above_max": "constraint 'min' ({min}) is above 'max' ({max})",
        "min_length_above_max_length": "constraint 'min_length' ({min_length}) is above "
        "'max_length' ({max_length})",
        "bad_pattern": "constraint 'pattern' is not a valid regular expression: {error}",
        "pattern_too_slow": "pattern {pattern} took too long to match this value; simplify the pattern",
        # Names, ids, metadata, lookups
        "name_not_str": "variable name must be a string, got {kind}",
        "name_empty": "variable name is empty",
        "name_too_long": "variable name is too long: {length} characters, at most {max_length}",
        "name_invalid": "invalid variable name {name!r}: use letters, digits, '_', '.', '-' "
        "and start with a letter or '_'",
        "session_id_not_str": "session id must be a string, got {kind}",
        "session_id_empty": "session id is empty",
        "session_id_too_long": "session id is too long: {length} characters, at most {max_length}",
        "session_id_invalid": (
            "invalid session id {session_id!r}: use printable characters, without leading or trailing spaces"
        ),
        "metadata_not_mapping": "metadata must be a mapping of strings to strings, got {kind}",
        "metadata_not_str": "metadata keys and values must be strings, got {value!r}",
        "metadata_empty_key": "metadata keys must not be empty",
        "metadata_too_many": "metadata has {count} entries, at most {max_entries}",
        "metadata_too_big": "metadata is {size} bytes, at most {max_bytes}",
        "variable_not_found": VariableNotFoundError.template,
        "session_not_found": SessionNotFoundError.template,
    }
)


def message(key: str, /, **fields: object) -> str:
    """Format the ``MESSAGES[key]`` template; every human-readable error goes through here."""
    return MESSAGES[key].format(**fields)


def invalid(key: str, /, **fields: object) -> ValidationError:
    """A :class:`ValidationError` carrying ``message(key, **fields)``, ready to raise."""
    return ValidationError(message(key, **fields))


class _Shown:
    """A value as quoted in a message: its repr, cut short so a huge value gives a short message."""

    def __init__(self, value: object) -> None:
        text = repr(value)
        self._text = text if len(text) <= _MAX_SHOWN_CHARS else text[: _MAX_SHOWN_CHARS - 3] + "..."

    def __repr__(self) -> str:
        return self._text

    __str__ = __repr__


def shown(value: object) -> _Shown:
    """``value`` as error messages quote it: ``{value!r}`` gives its repr, cut to 80 characters."""
    return _Shown(value)


def type_name(value: object) -> str:
    """The bare class name used in messages (``dict``, ``ndarray``)."""
    return type(value).__name__


def is_bool_like(value: object) -> bool:
    """``bool`` and numpy's ``bool_`` (its dtype kind is ``"b"``), which must never pass as numbers."""
    return isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", None) == "b"


def is_number(value: object) -> bool:
    """A real number that is not a bool or a string: int, float, numpy scalars, Decimal, Fraction."""
    if is_bool_like(value) or isinstance(value, str | bytes):
        return False
    return isinstance(value, int | float) or hasattr(value, "__float__")


def as_float(value: object) -> float | None:
    """``float(value)`` for numbers, ``None`` when it is not one (or overflows)."""
    if not is_number(value):
        return None
    try:
        return float(value)  # type: ignore[arg-type]  # is_number checked __float__
    except (TypeError, ValueError, OverflowError):
        return None


# --- values ------------------------------------------------------------------------------------


def _check_bounds(value: float, constraints: Mapping[str, Any]) -> None:
    low, high = constraints.get("min"), constraints.get("max")
    if low is None and high is None:
        return
    # NaN compares false with everything, so without this it would slip past any bound.
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid("not_finite", value=value)
    if low is not None and value < low:
        raise invalid("below_min", value=value, min=low)
    if high is not None and value > high:
        raise invalid("above_max", value=value, max=high)


def _normalize_float(value: object, constraints: Mapping[str, Any]) -> float:
    if type(value) is float:  # the common case, first
        _check_bounds(value, constraints)
        return value
    if isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            raise invalid("cannot_convert", value=shown(value), type=VariableType.FLOAT) from None
    else:
        converted = as_float(value)
        if converted is None:
            raise invalid("cannot_convert", value=shown(value), type=VariableType.FLOAT)
        result = converted
    _check_bounds(result, constraints)
    return result


def _to_int(value: object) -> int | None:
    if type(value) is int:  # the common case, first: a plain int is never bool-like
        return value
    if is_bool_like(value):
        return None
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    if hasattr(value, "__index__"):  # int and numpy integers
        return operator.index(value)  # hasattr() above narrows to SupportsIndex
    number = as_float(value)
    if number is None or not number.is_integer():  # is_integer() is False for NaN and inf
        return None
    return int(number)


def _normalize_integer(value: object, constraints: Mapping[str, Any]) -> int:
    if type(value) is int and not constraints and _INT64_MIN <= value <= _INT64_MAX:
        return value  # the common case, without the calls below: local writes are this fast path
    result = _to_int(value)
    if result is None:
        raise invalid("cannot_convert", value=shown(value), type=VariableType.INTEGER)
    if not _INT64_MIN <= result <= _INT64_MAX:
        raise invalid("int_out_of_range", value=shown(result))
    _check_bounds(result, constraints)
    return result


def _text(value: object, var_type: VariableType) -> str:
    """``value`` as a plain ``str`` that protobuf and msgpack can encode (no lone surrogates)."""
    if not isinstance(value, str):
        raise invalid("cannot_convert", value=shown(value), type=var_type)
    try:
        value.encode()
    except UnicodeEncodeError:
        raise invalid("not_utf8", type=var_type) from None
    return str(value)  # a plain str, even for str subclasses


def _normalize_string(value: object, constraints: Mapping[str, Any]) -> str:
    text = _text(value, VariableType.STRING)
    length = len(text)
    if (min_length := constraints.get("min_length")) is not None and length < min_length:
        raise invalid("too_short", min_length=min_length, length=length)
    if (max_length := constraints.get("max_length")) is not None and length > max_length:
        raise invalid("too_long", max_length=max_length, length=length)
    if (pattern := constraints.get("pattern")) is not None:
        try:
            matched = pattern_matches(pattern, text)
        except PatternTooSlowError:
            raise invalid("pattern_too_slow", pattern=pattern) from None
        if not matched:
            raise invalid("pattern", pattern=pattern)
    if (options := constraints.get("enum")) is not None and text not in options:
        raise invalid("not_in_enum", options=", ".join(options))
    return text


_TRUE_FALSE: Final[Mapping[str, bool]] = MappingProxyType({"true": True, "false": False})


def _normalize_boolean(value: object, constraints: Mapping[str, Any]) -> bool:
    if is_bool_like(value):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_FALSE:
        return _TRUE_FALSE[value.strip().lower()]
    raise invalid("cannot_convert", value=shown(value), type=VariableType.BOOLEAN)


def _normalize_choice(value: object, constraints: Mapping[str, Any]) -> str:
    text = _text(value, VariableType.CHOICE)
    choices = constraints.get("choices")
    if not choices:
        raise invalid("constraint_required", key="choices", type=VariableType.CHOICE)
    if text not in choices:
        raise invalid("not_in_enum", options=", ".join(choices))
    return text


def _normalize_module(value: object, constraints: Mapping[str, Any]) -> str:
    text = _text(value, VariableType.MODULE)
    if not text:
        raise invalid("module_empty")
    allowed = constraints.get("allowed_modules")
    if allowed is not None and text not in allowed:
        raise invalid("module_not_allowed", module=shown(text), allowed=", ".join(allowed))
    return text


def _as_list(value: object) -> list[Any] | Any:
    """Lists and tuples as a list, array-likes through ``.tolist()``; anything else is returned as is."""
    if isinstance(value, list | tuple):
        return list(value)
    if not isinstance(value, str | bytes | Mapping) and callable(getattr(value, "tolist", None)):
        return value.tolist()  # type: ignore[attr-defined]  # numpy arrays, checked above
    return value


def _normalize_embedding(value: object, constraints: Mapping[str, Any]) -> list[float]:
    items = _as_list(value)
    if not isinstance(items, list):
        raise invalid("cannot_convert", value=shown(value), type=VariableType.EMBEDDING)
    if not items:
        raise invalid("embedding_empty")
    result: list[float] = []
    for index, item in enumerate(items):
        number = as_float(item)
        if number is None or not math.isfinite(number):
            raise invalid("embedding_item", value=shown(item), index=index)
        result.append(number)
    expected = constraints.get("dimensions")
    if expected is not None and len(result) != expected:
        raise invalid("dimension_mismatch", expected=expected, actual=len(result))
    return result


# --- tensors -----------------------------------------------------------------------------------


def infer_shape(nested: object) -> list[int]:
    """The shape of nested lists, read along the first element of every level (``[]`` for a scalar)."""
    shape: list[int] = []
    node = nested
    while isinstance(node, list | tuple):
        shape.append(len(node))
        if not node:
            raise invalid("tensor_empty_dim", shape=shape)
        if len(shape) > _MAX_TENSOR_NDIM:
            raise invalid("tensor_too_deep", max_ndim=_MAX_TENSOR_NDIM)
        node = node[0]
    return shape


def flatten(nested: object, shape: Sequence[int]) -> list[Any]:
    """Row-major values of nested lists of the given shape; ragged input is rejected.

    Level by level rather than recursive, so nesting depth never meets the recursion limit.
    """
    level: list[Any] = [nested]
    for dim in shape:
        following: list[Any] = []
        for node in level:
            if not isinstance(node, list | tuple) or len(node) != dim:
                raise invalid("tensor_ragged")
            following.extend(node)
        level = following
    if any(isinstance(item, list | tuple) for item in level):
        raise invalid("tensor_ragged")
    return level


def nest(flat: Sequence[Any], shape: Sequence[int]) -> Any:
    """Inverse of :func:`flatten`: nested lists (a bare value for shape ``[]``)."""
    if math.prod(shape) != len(flat):
        raise invalid("tensor_size", shape=list(shape), expected=math.prod(shape), actual=len(flat))
    if not shape:
        return flat[0]
    nodes: list[Any] = list(flat)
    for dim in reversed(shape[1:]):
        nodes = [nodes[i : i + dim] for i in range(0, len(nodes), dim)]
    return nodes


def check_shape(shape: object) -> list[int]:
    """A tensor shape as a list of ints >= 1 (``[]`` for a scalar), else a ValidationError."""
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in shape
    ):
        raise invalid("cannot_convert", value=shown(shape), type="a tensor shape")
    if any(d < 1 for d in shape):
        raise invalid("tensor_empty_dim", shape=list(shape))
    return list(shape)


def tensor_parts(value: object) -> tuple[list[int], list[Any], str | None]:
    """``(shape, flat values, dtype or None)`` of any accepted tensor form, before element checks.

    Forms: nested lists or tuples, array-likes with ``.tolist()``, a bare number (shape ``[]``), and
    ``{"shape": [...], "values": [...flat...], "dtype": ...}``.
    """
    if isinstance(value, Mapping):
        if "values" not in value or not isinstance(value["values"], list | tuple):
            raise invalid("cannot_convert", value=shown(value), type=VariableType.TENSOR)
        shape = check_shape(value.get("shape", [len(value["values"])]))
        flat = list(value["values"])
        if math.prod(shape) != len(flat):
            raise invalid("tensor_size", shape=shape, expected=math.prod(shape), actual=len(flat))
        dtype = value.get("dtype")
        return shape, flat, None if dtype is None else check_dtype(dtype)
    dtype_hint = _array_dtype(value)
    nested = _as_list(value)
    if isinstance(nested, list | tuple):
        shape = infer_shape(nested)
        return shape, flatten(nested, shape), dtype_hint
    if is_number(nested):
        return [], [nested], dtype_hint
    raise invalid("cannot_convert", value=shown(value), type=VariableType.TENSOR)


def _array_dtype(value: object) -> str | None:
    """A numpy array's dtype name when it is one of ours (``"int32"``), else ``None``."""
    name = str(getattr(getattr(value, "dtype", None), "name", ""))
    return name if name in TENSOR_DTYPES else None


def check_dtype(dtype: object) -> str:
    """``dtype`` if it is a supported tensor dtype name, else a ValidationError."""
    if not isinstance(dtype, str) or dtype not in TENSOR_DTYPES:
        raise invalid("bad_dtype", dtype=shown(dtype), options=", ".join(sorted(TENSOR_DTYPES)))
    return dtype


def tensor_element(item: object, dtype: str) -> int | float:
    """One tensor value as the Python number its dtype stores: whole and in range for int dtypes."""
    number = as_float(item)
    if number is None or not math.isfinite(number):
        raise invalid("tensor_item", value=shown(item))
    limit = _INT_DTYPE_LIMITS.get(dtype)
    if limit is None:
        return number
    whole = _to_int(item)
    if whole is None:
        raise invalid("tensor_not_whole", dtype=dtype, value=shown(item))
    if not -limit <= whole < limit:
        raise invalid("tensor_int_range", value=shown(whole), dtype=dtype)
    return whole


def _normalize_tensor(value: object, constraints: Mapping[str, Any]) -> Any:
    shape, flat, given_dtype = tensor_parts(value)
    required_dtype = constraints.get("dtype")
    # An array's own dtype only fills in when no constraint says otherwise; an explicit dict
    # dtype that contradicts the constraint is a mistake worth reporting.
    explicit_dtype = given_dtype if isinstance(value, Mapping) else None
    if required_dtype is not None and explicit_dtype not in (None, required_dtype):
        raise invalid("dtype_mismatch", expected=required_dtype, actual=given_dtype)
    dtype = required_dtype or given_dtype or DEFAULT_TENSOR_DTYPE
    expected_shape = constraints.get("shape")
    if expected_shape is not None and list(expected_shape) != shape:
        raise invalid("shape_mismatch", expected=list(expected_shape), actual=shape)
    return nest([tensor_element(item, dtype) for item in flat], shape)


_NO_CONSTRAINTS: Final[Mapping[str, Any]] = MappingProxyType({})

_NORMALIZERS: Final[Mapping[VariableType, Callable[[object, Mapping[str, Any]], Any]]] = MappingProxyType(
    {
        VariableType.FLOAT: _normalize_float,
        VariableType.INTEGER: _normalize_integer,
        VariableType.STRING: _normalize_string,
        VariableType.BOOLEAN: _normalize_boolean,
        VariableType.CHOICE: _normalize_choice,
        VariableType.MODULE: _normalize_module,
        VariableType.EMBEDDING: _normalize_embedding,
        VariableType.TENSOR: _normalize_tensor,
    }
)


def normalize_value(
    var_type: VariableType, value: object, constraints: Mapping[str, Any] | None = None
) -> Any:
    """Convert ``value`` to the canonical Python value of ``var_type`` and check it against ``constraints``.

    ``constraints`` are trusted to have passed :func:`validate_constraints`. Canonical values: float,
    int, str, bool, str (choice, module), ``list[float]`` (embedding) and nested lists of numbers
    (tensor; ints for int dtypes, floats otherwise).

    >>> normalize_value(VariableType.INTEGER, "42", {"max": 100})
    42
    """
    # A VariableType (or its exact value) finds its normalizer directly; anything else is parsed.
    normalize = _NORMALIZERS.get(var_type) or _NORMALIZERS[VariableType.parse(var_type)]
    return normalize(value, constraints or _NO_CONSTRAINTS)
