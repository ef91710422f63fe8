"""Private wire (protobuf) and storage (msgpack) codecs behind :mod:`unified_bridge.types`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import msgpack  # msgpack ships no type information

from unified_bridge._validators import (
    DEFAULT_TENSOR_DTYPE,
    Constraints,
    VariableType,
    check_dtype,
    check_shape,
    invalid,
    nest,
    shown,
    tensor_element,
    tensor_parts,
)
from unified_bridge.errors import ValidationError
from unified_bridge.proto import unified_bridge_pb2 as pb2

# The `Value.kind` oneof field that carries each type.
_VALUE_FIELDS: Final[Mapping[VariableType, str]] = MappingProxyType(
    {
        VariableType.FLOAT: "float_value",
        VariableType.INTEGER: "integer_value",
        VariableType.STRING: "string_value",
        VariableType.BOOLEAN: "bool_value",
        VariableType.CHOICE: "choice_value",
        VariableType.MODULE: "module_value",
        VariableType.EMBEDDING: "embedding_value",
        VariableType.TENSOR: "tensor_value",
    }
)

# SDK constraint key -> Constraints field; only "enum" is renamed (it is a keyword in protobuf enums).
_CONSTRAINT_FIELDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "min": "min",
        "max": "max",
        "min_length": "min_length",
        "max_length": "max_length",
        "pattern": "pattern",
        "enum": "enum_values",
        "choices": "choices",
        "allowed_modules": "allowed_modules",
        "dimensions": "dimensions",
        "shape": "shape",
        "dtype": "dtype",
    }
)
_REPEATED_CONSTRAINTS: Final = frozenset({"enum", "choices", "allowed_modules", "shape"})
_CONSTRAINT_KEYS: Final[Mapping[str, str]] = MappingProxyType({f: k for k, f in _CONSTRAINT_FIELDS.items()})


def _tensor_layout(value: Any, constraints: Mapping[str, Any] | None) -> tuple[list[int], list[Any], str]:
    """Shape, flat values and dtype of a normalized tensor.

    Without a dtype constraint the values tell: a normalized tensor holds ints only for int dtypes,
    so all-int values are labelled int64 and survive the round trip as ints.
    """
    shape, flat, hint = tensor_parts(value)
    dtype = (constraints or {}).get("dtype") or hint
    if dtype is None:
        all_ints = all(isinstance(v, int) and not isinstance(v, bool) for v in flat)
        dtype = "int64" if all_ints else DEFAULT_TENSOR_DTYPE
    return shape, flat, check_dtype(dtype)


def _tensor_from_layout(shape: object, dtype: object, values: list[Any]) -> Any:
    checked_dtype = check_dtype(dtype or DEFAULT_TENSOR_DTYPE)
    checked_shape = check_shape(shape)
    return nest([tensor_element(v, checked_dtype) for v in values], checked_shape)


def value_to_proto(
    var_type: VariableType, value: Any, constraints: Mapping[str, Any] | None = None
) -> pb2.Value:
    """A ``pb2.Value`` holding an already normalized value in the field of ``var_type``.

    ``constraints`` is only read for a tensor's ``dtype``.
    """
    var_type = VariableType.parse(var_type)
    result = pb2.Value()
    try:
        if var_type is VariableType.EMBEDDING:
            result.embedding_value.values.extend(value)
        elif var_type is VariableType.TENSOR:
            shape, flat, dtype = _tensor_layout(value, constraints)
            result.tensor_value.shape.extend(shape)
            result.tensor_value.dtype = dtype
            result.tensor_value.values.extend(float(v) for v in flat)
        else:
            setattr(result, _VALUE_FIELDS[var_type], value)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise invalid("cannot_convert", value=shown(value), type=var_type) from None
    return result


def _read_tensor(message: pb2.Value) -> Any:
    tensor = message.tensor_value
    return _tensor_from_layout(list(tensor.shape), tensor.dtype, list(tensor.values))


_PROTO_READERS: Final[Mapping[VariableType, Callable[[pb2.Value], Any]]] = MappingProxyType(
    {
        VariableType.FLOAT: lambda m: float(m.float_value),
        VariableType.INTEGER: lambda m: int(m.integer_value),
        VariableType.STRING: lambda m: str(m.string_value),
        VariableType.BOOLEAN: lambda m: bool(m.bool_value),
        VariableType.CHOICE: lambda m: str(m.choice_value),
        VariableType.MODULE: lambda m: str(m.module_value),
        VariableType.EMBEDDING: lambda m: [float(v) for v in m.embedding_value.values],
        VariableType.TENSOR: _read_tensor,
    }
)


def value_from_proto(var_type: VariableType, value: pb2.Value) -> Any:
    """The Python value in ``value``; the set oneof field must be the one of ``var_type``.

    Tensors come back as nested lists (ints for int dtypes). No constraint is checked here: pass
    the result to ``normalize_value`` for that.
    """
    if var_type.__class__ is not VariableType:
        var_type = VariableType.parse(var_type)
    kind = value.WhichOneof("kind")
    if kind is None:
        raise invalid("value_required")
    if kind != _VALUE_FIELDS[var_type]:
        article = "an" if var_type.value[0] in "aeiou" else "a"
        raise invalid("wrong_kind", article=article, type=var_type, kind=kind)
    return _PROTO_READERS[var_type](value)


def constraints_to_proto(constraints: Mapping[str, Any] | None) -> pb2.Constraints:
    """A ``pb2.Constraints`` from a validated constraints dict (``"enum"`` goes to ``enum_values``)."""
    result = pb2.Constraints()
    for key, value in (constraints or {}).items():
        if value is None:
            continue
        field = _CONSTRAINT_FIELDS.get(key)
        if field is None:
            raise invalid("unknown_constraint", key=key)
        try:
            if key in _REPEATED_CONSTRAINTS:
                getattr(result, field).extend(value)
            else:
                setattr(result, field, value)
        except (TypeError, ValueError):
            raise invalid("bad_constraint", key=key, problem="cannot be sent", value=shown(value)) from None
    return result


def constraints_from_proto(message: pb2.Constraints) -> Constraints:
    """The constraints dict of a ``pb2.Constraints``: only fields that are set (non-empty when repeated).

    Protobuf cannot tell an empty ``shape`` from an absent one, so ``shape=[]`` comes back absent.
    """
    # ListFields gives only the fields that are set, in field-number order (the table's order).
    result: Constraints = {}
    for descriptor, value in message.ListFields():
        key = _CONSTRAINT_KEYS[descriptor.name]
        result[key] = list(value) if key in _REPEATED_CONSTRAINTS else value
    return result


# --- storage -----------------------------------------------------------------------------------


_PACKERS = threading.local()
# A packer keeps the buffer of the largest value it packed: one that packed more is not kept.
_KEPT_PACKER_MAX = 64 * 1024


def _pack(payload: Any) -> bytes:
    """msgpack bytes of ``payload``, with a packer this thread keeps: 133 ns for a small value,
    taking and putting back included, against 270 ns for ``msgpack.packb`` (a new packer per value).
    It is taken out while in use (a pack within a pack makes its own), and not put back after an
    error or a large value."""
    kept = _PACKERS.__dict__
    packer = kept.pop("packer", None) or msgpack.Packer(use_bin_type=True)
    packed: bytes = packer.pack(payload)
    if len(packed) <= _KEPT_PACKER_MAX:
        kept["packer"] = packer
    return packed


def encode_value(var_type: VariableType, value: Any, constraints: Mapping[str, Any] | None = None) -> bytes:
    """Compact msgpack bytes of a normalized value, for Redis (never pickle: Redis data is not trusted).

    Tensors are stored as ``{"s": shape, "d": dtype, "v": flat values}``; ``constraints`` is only read
    for a tensor's dtype.
    """
    if var_type.__class__ is not VariableType:
        var_type = VariableType.parse(var_type)
    payload: Any = value
    if var_type is VariableType.TENSOR:
        shape, flat, dtype = _tensor_layout(value, constraints)
        payload = {"s": shape, "d": dtype, "v": flat}
    try:
        packed = _pack(payload)
    except (TypeError, ValueError, OverflowError):
        raise invalid("cannot_convert", value=shown(value), type=var_type) from None
    return packed


def stored_tensor_dtype(data: bytes) -> str | None:
    """The dtype a stored tensor was written with (None if the bytes hold no tensor record)."""
    raw = msgpack.unpackb(data, raw=False)
    dtype = raw.get("d") if isinstance(raw, dict) else None
    return dtype if isinstance(dtype, str) else None


def _decode_float(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError("not a number")
    return float(raw)


def _decode_exact(kind: type) -> Callable[[Any], Any]:
    def decode(raw: Any) -> Any:
        # bool is an int subclass; an integer variable must not come back as True.
        if type(raw) is not kind:
            raise ValueError(f"not {kind.__name__}")
        return raw

    return decode


def _decode_embedding(raw: Any) -> list[float]:
    if not isinstance(raw, list):
        raise ValueError("not a list")
    return [_decode_float(v) for v in raw]


def _decode_tensor(raw: Any) -> Any:
    if not isinstance(raw, dict) or not isinstance(raw.get("v"), list):
        raise ValueError("not a tensor record")
    return _tensor_from_layout(raw.get("s"), raw.get("d"), raw["v"])


_STORAGE_DECODERS: Final[Mapping[VariableType, Callable[[Any], Any]]] = MappingProxyType(
    {
        VariableType.FLOAT: _decode_float,
        VariableType.INTEGER: _decode_exact(int),
        VariableType.STRING: _decode_exact(str),
        VariableType.BOOLEAN: _decode_exact(bool),
        VariableType.CHOICE: _decode_exact(str),
        VariableType.MODULE: _decode_exact(str),
        VariableType.EMBEDDING: _decode_embedding,
        VariableType.TENSOR: _decode_tensor,
    }
)


def decode_value(var_type: VariableType, data: bytes) -> Any:
    """Inverse of :func:`encode_value`; bytes that do not hold a ``var_type`` value raise ValidationError."""
    var_type = VariableType.parse(var_type)
    try:
        raw = msgpack.unpackb(data, raw=False)
        return _STORAGE_DECODERS[var_type](raw)
    except ValidationError as exc:
        raise invalid("corrupt_value", type=var_type, reason=exc.message) from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise invalid("corrupt_value", type=var_type, reason=exc) from None


__all__ = [
    "constraints_from_proto",
    "constraints_to_proto",
    "decode_value",
    "encode_value",
    "value_from_proto",
    "value_to_proto",
]
