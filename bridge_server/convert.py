"""Conversions between the store's records and protobuf messages."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from bridge_server.events import ChangeEvent, HeldWrite, VariableChange
from bridge_server.importer import ImportedVariable
from bridge_server.model import Definition, SessionInfo, VariableRecord
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.types import (
    VariableType,
    constraints_from_proto,
    constraints_to_proto,
    decode_value,
    stored_tensor_dtype,
    value_from_proto,
    value_to_proto,
)

__all__ = [
    "event_to_proto",
    "import_digest",
    "imported_variable_from_proto",
    "own_writes_to_proto",
    "session_to_proto",
    "timestamp",
    "variable_to_proto",
]


def timestamp(milliseconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(milliseconds)
    return stamp


def variable_to_proto(record: VariableRecord) -> pb.Variable:
    definition = record.definition
    message = pb.Variable()
    message.CopyFrom(_definition_proto(definition))
    message.value.CopyFrom(value_to_proto(definition.type, record.value, definition.constraints))
    message.version = record.version
    message.updated_at.FromMilliseconds(record.updated_at_ms)
    return message


# Definition -> its part of a Variable message, built once (a definition never changes). Keyed by
# the object's identity, which the store keeps alive while it caches the definition; the entry holds
# the definition too, so an id reused by another object never matches. Cleared when full.
_DEFINITION_PROTOS: dict[int, tuple[Definition, pb.Variable]] = {}
_DEFINITION_PROTOS_MAX = 10_000


def _definition_proto(definition: Definition) -> pb.Variable:
    cached = _DEFINITION_PROTOS.get(id(definition))
    if cached is not None and cached[0] is definition:
        return cached[1]
    message = pb.Variable(
        id=definition.id,
        name=definition.name,
        type=definition.type.to_proto(),  # type: ignore[arg-type]
        constraints=constraints_to_proto(definition.constraints),
        metadata=definition.metadata,
        description=definition.description,
        created_at=timestamp(definition.created_at_ms),
    )
    if len(_DEFINITION_PROTOS) >= _DEFINITION_PROTOS_MAX:
        _DEFINITION_PROTOS.clear()
    _DEFINITION_PROTOS[id(definition)] = (definition, message)
    return message


def import_digest(request: pb.ImportSessionRequest) -> str:
    """sha256 (hex) of an import's content: its deterministic serialization (map keys sorted)."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


def imported_variable_from_proto(message: pb.Variable) -> ImportedVariable:
    """One variable of an import, unvalidated (the importer validates it and names it in errors)."""
    has_value = message.HasField("value")
    return ImportedVariable(
        id=message.id,
        name=message.name,
        type_number=message.type,
        read_value=(lambda var_type: value_from_proto(var_type, message.value)) if has_value else None,
        constraints=constraints_from_proto(message.constraints),
        metadata=dict(message.metadata),
        description=message.description,
        version=message.version,
        created_at_ms=message.created_at.ToMilliseconds() if message.HasField("created_at") else None,
        updated_at_ms=message.updated_at.ToMilliseconds() if message.HasField("updated_at") else None,
    )


def session_to_proto(info: SessionInfo) -> pb.Session:
    return pb.Session(
        session_id=info.session_id,
        created_at=timestamp(info.created_at_ms),
        last_active=timestamp(info.last_active_ms),
        ttl_seconds=info.ttl_seconds,
        metadata=info.metadata,
        variable_count=info.variable_count,
        revision=info.revision,
    )


def event_to_proto(event: ChangeEvent) -> pb.WatchEvent:
    message = pb.WatchEvent(
        revision=event.revision,
        kind=int(event.kind),  # type: ignore[arg-type]
        changes=[_change_to_proto(change) for change in event.changes],
    )
    if event.time_ms:
        message.time.FromMilliseconds(event.time_ms)
    return message


def own_writes_to_proto(writes: Sequence[HeldWrite], alone: bool) -> pb.WatchEvent:
    """A message listing ``writes`` (ids and versions, no values): of kind OWN_WRITES when it goes
    ``alone``, else with nothing but `own_writes`, to be sent in front of another event's bytes
    (protobuf parses the two as one message, and no field of this one may override the other's)."""
    message = pb.WatchEvent()
    if alone:
        message.revision, message.kind = writes[-1].revision, pb.EVENT_KIND_OWN_WRITES
    for write in writes:
        listed = message.own_writes.add(revision=write.revision)
        listed.time.FromMilliseconds(write.time_ms)
        for var_id, name, version in write.changes:
            listed.changes.add(id=var_id, name=name, version=version)
    return message


def _change_to_proto(change: VariableChange) -> pb.VariableChange:
    message = pb.VariableChange(id=change.id, name=change.name, version=change.version)
    if change.value is not None:
        var_type = VariableType(change.type)
        # A tensor keeps the dtype it was stored with; the event carries no constraints.
        dtype = stored_tensor_dtype(change.value) if var_type is VariableType.TENSOR else None
        value = decode_value(var_type, change.value)
        message.value.CopyFrom(value_to_proto(var_type, value, {"dtype": dtype} if dtype else None))
    return message
