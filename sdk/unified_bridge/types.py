"""The Unified Bridge type system: variable types, constraints, values, names and their encodings.

The server, the SDK's early checks and the local backend all import this module, so they can never
disagree about what a valid value is or what an error says. The pieces:

* :class:`VariableType` and :func:`infer_type`;
* :func:`validate_constraints` and :func:`normalize_value` (every message comes from :data:`MESSAGES`);
* wire conversions (:func:`value_to_proto`, :func:`value_from_proto`, :func:`constraints_to_proto`,
  :func:`constraints_from_proto`) and storage encoding (:func:`encode_value`, :func:`decode_value`);
* names, session ids and metadata, which also end up in Redis keys.

>>> normalize_value(VariableType.FLOAT, "0.5", {"min": 0, "max": 1})
0.5
"""

from __future__ import annotations

import math
import operator
import re
import secrets
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from unified_bridge._codec import (
    constraints_from_proto,
    constraints_to_proto,
    decode_value,
    encode_value,
    stored_tensor_dtype,
    value_from_proto,
    value_to_proto,
)
from unified_bridge._patterns import check_pattern_syntax
from unified_bridge._validators import (
    MESSAGES,
    Constraints,
    VariableType,
    as_float,
    check_dtype,
    invalid,
    is_number,
    message,
    normalize_value,
    shown,
    type_name,
)

__all__ = [
    "MESSAGES",
    "MIGRATION_METADATA_KEYS",
    "NAME_PATTERN",
    "Constraints",
    "VariableType",
    "constraints_from_proto",
    "constraints_to_proto",
    "decode_value",
    "encode_value",
    "infer_type",
    "message",
    "new_variable_id",
    "normalize_value",
    "stored_tensor_dtype",
    "validate_constraints",
    "validate_metadata",
    "validate_name",
    "validate_session_id",
    "value_from_proto",
    "value_to_proto",
]

# Names become parts of Redis keys as they are: no '{' '}' (cluster hash tags), ':' (key separator),
# whitespace or glob characters. Match with fullmatch(): '$' would also accept a trailing newline.
# Session ids are any printable text (the frontend encodes them into keys, see bridge_server.keys).
NAME_PATTERN: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# Protobuf carries lengths, dimensions and shapes as uint32.
_UINT32_MAX: Final = 2**32 - 1


def infer_type(value: object) -> VariableType:
    """The type to register for a plain Python value, as in ``ctx["x"] = value``.

    bool, int, float and str map to their types; a flat list or tuple of numbers (or a 1-d array)
    is an embedding; nested lists (or an array with ``ndim > 1``) are a tensor.

    >>> infer_type([0.1, 0.2])
    <VariableType.EMBEDDING: 'embedding'>
    """
    ndim = getattr(value, "ndim", None)
    if isinstance(ndim, int) and callable(getattr(value, "tolist", None)):
        if ndim == 0:  # numpy scalar: judge the Python value it stands for
            return infer_type(value.tolist())  # type: ignore[attr-defined]  # checked just above
        return VariableType.EMBEDDING if ndim == 1 else VariableType.TENSOR
    # bool before int: True is an int too.
    if isinstance(value, bool):
        return VariableType.BOOLEAN
    if isinstance(value, int):
        return VariableType.INTEGER
    if isinstance(value, float):
        return VariableType.FLOAT
    if isinstance(value, str):
        return VariableType.STRING
    if isinstance(value, list | tuple) and value:
        if all(isinstance(item, list | tuple) for item in value):
            return VariableType.TENSOR
        if all(is_number(item) for item in value):
            return VariableType.EMBEDDING
    raise invalid("cannot_infer", kind=type_name(value))


def _validate_key_part(
    value: object, pattern: re.Pattern[str], what: str, max_length: int, field: str
) -> str:
    """Shared checks of names and session ids; ``what`` picks the message keys."""
    if not isinstance(value, str):
        raise invalid(f"{what}_not_str", kind=type_name(value))
    if not value:
        raise invalid(f"{what}_empty")
    if len(value) > max_length:
        raise invalid(f"{what}_too_long", length=len(value), max_length=max_length)
    if pattern.fullmatch(value) is None:
        raise invalid(f"{what}_invalid", **{field: value})
    return value


def validate_name(name: object, max_length: int = 128) -> str:
    """``name`` if it is a valid variable name: letters, digits, ``_ . -``, starting with a letter or ``_``.

    >>> validate_name("learning_rate")
    'learning_rate'
    """
    return _validate_key_part(name, NAME_PATTERN, "name", max_length, "name")


def validate_session_id(session_id: object, max_length: int = 128) -> str:
    """``session_id`` if it is valid: printable text (any script, spaces inside, no control or
    format characters), without leading or trailing spaces, at most ``max_length`` characters.

    >>> validate_session_id("tenant:42/run-2026-11-22T10:00")
    'tenant:42/run-2026-11-22T10:00'
    """
    if not isinstance(session_id, str):
        raise invalid("session_id_not_str", kind=type_name(session_id))
    if not session_id:
        raise invalid("session_id_empty")
    if len(session_id) > max_length:
        raise invalid("session_id_too_long", length=len(session_id), max_length=max_length)
    if not session_id.isprintable() or session_id.strip() != session_id:
        raise invalid("session_id_invalid", session_id=session_id)
    return session_id


def validate_metadata(
    metadata: Mapping[str, str] | None, max_entries: int = 64, max_bytes: int = 16384
) -> dict[str, str]:
    """A copy of ``metadata`` after checking it maps non-empty strings to strings within the limits.

    ``max_bytes`` counts the UTF-8 size of all keys and values together.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise invalid("metadata_not_mapping", kind=type_name(metadata))
    if len(metadata) > max_entries:
        raise invalid("metadata_too_many", count=len(metadata), max_entries=max_entries)
    result: dict[str, str] = {}
    size = 0
    for key, value in metadata.items():
        for part in (key, value):
            if not isinstance(part, str):
                raise invalid("metadata_not_str", value=shown(part))
        if not key:
            raise invalid("metadata_empty_key")
        size += len(key.encode(errors="surrogatepass")) + len(value.encode(errors="surrogatepass"))
        result[key] = value
    if size > max_bytes:
        raise invalid("metadata_too_big", size=size, max_bytes=max_bytes)
    return result


#: Metadata keys a client adds to every variable it moves from a local session to the bridge (when
#: it was moved, and from where). Comparing definitions ignores them, so registering the same variable
#: again after a move is still idempotent.
MIGRATION_METADATA_KEYS: Final = ("migrated_at", "migrated_from")


def new_variable_id(name: str) -> str:
    """A fresh id ``var_<name>_<8 hex digits>`` for a variable called ``name``."""
    return f"var_{validate_name(name)}_{secrets.token_hex(4)}"


# --- constraints -------------------------------------------------------------------------------


def _check_bound(key: str, value: object) -> int | float:
    if not is_number(value):
        raise invalid("bad_constraint", key=key, problem="must be a number", value=shown(value))
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return int(value)
    # Beyond 64 bits a bound is a double (as on the wire); as_float is None when even that overflows.
    number = as_float(value)
    if number is None or math.isnan(number):
        raise invalid("bad_constraint", key=key, problem="must be a number", value=shown(value))
    return number


def _check_count(key: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise invalid("bad_constraint", key=key, problem="must be an integer", value=shown(value))
    number = operator.index(value)  # hasattr() above narrows to SupportsIndex
    if not minimum <= number <= _UINT32_MAX:
        problem = f"must be between {minimum} and {_UINT32_MAX}"
        raise invalid("bad_constraint", key=key, problem=problem, value=number)
    return number


def _check_strings(key: str, value: object, *, unique: bool = False) -> list[str]:
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
        problem = "must be a non-empty list of strings"
        raise invalid("bad_constraint", key=key, problem=problem, value=shown(value))
    if unique and len(set(value)) != len(value):
        raise invalid("bad_constraint", key=key, problem="must not repeat a value", value=shown(value))
    return [str(v) for v in value]


def _check_pattern(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise invalid("bad_constraint", key=key, problem="must be a string", value=shown(value))
    try:
        check_pattern_syntax(value)
    except ValueError as exc:
        raise invalid("bad_pattern", error=exc) from None
    return value


def _check_shape_constraint(key: str, value: object) -> list[int]:
    if not isinstance(value, list | tuple):
        problem = "must be a list of integers >= 1"
        raise invalid("bad_constraint", key=key, problem=problem, value=shown(value))
    return [_check_count(key, dim, 1) for dim in value]


_CONSTRAINT_CHECKS: Final[Mapping[str, Callable[[str, object], Any]]] = MappingProxyType(
    {
        "min": _check_bound,
        "max": _check_bound,
        "min_length": lambda key, value: _check_count(key, value, 0),
        "max_length": lambda key, value: _check_count(key, value, 0),
        "pattern": _check_pattern,
        "enum": _check_strings,
        "choices": lambda key, value: _check_strings(key, value, unique=True),
        "allowed_modules": _check_strings,
        "dimensions": lambda key, value: _check_count(key, value, 1),
        "shape": _check_shape_constraint,
        "dtype": lambda key, value: check_dtype(value),
    }
)

_APPLICABLE: Final[Mapping[VariableType, frozenset[str]]] = MappingProxyType(
    {
        VariableType.FLOAT: frozenset({"min", "max"}),
        VariableType.INTEGER: frozenset({"min", "max"}),
        VariableType.STRING: frozenset({"min_length", "max_length", "pattern", "enum"}),
        VariableType.BOOLEAN: frozenset(),
        VariableType.CHOICE: frozenset({"choices"}),
        VariableType.MODULE: frozenset({"allowed_modules"}),
        VariableType.EMBEDDING: frozenset({"dimensions"}),
        VariableType.TENSOR: frozenset({"shape", "dtype"}),
    }
)


def validate_constraints(var_type: VariableType, constraints: Mapping[str, Any] | None) -> Constraints:
    """Check and normalize the constraints of a ``var_type`` variable; returns a new plain dict.

    Keys that are unknown or do not apply to the type are rejected, as are bad values and
    contradictions (``min > max``). ``None`` values count as absent.

    >>> validate_constraints(VariableType.CHOICE, {"choices": ("a", "b")})
    {'choices': ['a', 'b']}
    """
    var_type = VariableType.parse(var_type)
    if constraints is None:
        constraints = {}
    if not isinstance(constraints, Mapping):
        raise invalid("constraints_not_mapping", kind=type_name(constraints))
    result: Constraints = {}
    for key, value in constraints.items():
        if key not in _CONSTRAINT_CHECKS:
            raise invalid("unknown_constraint", key=shown(key))
        if key not in _APPLICABLE[var_type]:
            raise invalid("constraint_not_applicable", key=key, type=var_type)
        if value is not None:
            result[key] = _CONSTRAINT_CHECKS[key](key, value)
    if var_type is VariableType.INTEGER:
        # Bounds cross the wire as doubles; an integer's whole bounds read best as integers
        # ("below minimum 0", not "0.0"), and compare exactly with large values.
        for key in ("min", "max"):
            bound = result.get(key)
            if isinstance(bound, float) and bound.is_integer() and _INT64_MIN <= bound <= _INT64_MAX:
                result[key] = int(bound)
    _check_consistency(var_type, result)
    return result


def _check_consistency(var_type: VariableType, constraints: Constraints) -> None:
    low, high = constraints.get("min"), constraints.get("max")
    if low is not None and high is not None and low > high:
        raise invalid("min_above_max", min=low, max=high)
    short, long = constraints.get("min_length"), constraints.get("max_length")
    if short is not None and long is not None and short > long:
        raise invalid("min_length_above_max_length", min_length=short, max_length=long)
    if var_type is VariableType.CHOICE and "choices" not in constraints:
        raise invalid("constraint_required", key="choices", type=var_type)
