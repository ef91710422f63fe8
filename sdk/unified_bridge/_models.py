"""Plain Python views of the wire messages the SDK hands to users, and their decoders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp

from unified_bridge._codec import _VALUE_FIELDS
from unified_bridge.proto import unified_bridge_pb2 as pb2
from unified_bridge.types import VariableType, constraints_from_proto, value_from_proto

__all__ = [
    "Change",
    "ChangeEvent",
    "Definition",
    "SessionSnapshot",
    "VariableInfo",
    "VariableState",
    "decode_event",
    "decode_variable",
]


@dataclass(frozen=True, slots=True)
class Definition:
    """The immutable part of a variable: fixed for the life of its id."""

    id: str
    name: str
    type: VariableType
    constraints: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True, slots=True)
class VariableInfo:
    """A variable as the server returned it."""

    definition: Definition
    value: Any
    version: int
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def type(self) -> VariableType:
        return self.definition.type

    def as_dict(self) -> dict[str, Any]:
        """The dict ``list_variables`` returns."""
        d = self.definition
        return {
            "id": d.id,
            "name": d.name,
            "type": d.type,
            "value": self.value,
            "constraints": dict(d.constraints),
            "metadata": dict(d.metadata),
            "description": d.description,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One variable touched by a mutation; ``value`` is None for deletions."""

    id: str
    name: str
    version: int
    value: Any = None


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One event of a session's change stream.

    ``kind`` is ``"registered"``, ``"updated"``, ``"deleted"``, ``"session_deleted"`` (the stream ends),
    ``"history_gone"`` (events between the last one seen and ``revision`` were lost) or ``"imported"``
    (the session was created whole by an import, as when a local-first context moves to the bridge:
    ``changes`` lists every variable, with its value when the import was small enough to carry it).
    """

    kind: str
    revision: int
    changes: tuple[Change, ...] = ()
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class VariableState:
    """One variable as a snapshot holds it."""

    definition: Definition
    value: Any
    version: int
    created_at_ms: int
    updated_at_ms: int


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """A whole session at one revision, ids and versions included: what an import moves to the bridge."""

    session_id: str
    metadata: dict[str, str]
    revision: int
    created_at_ms: int
    variables: tuple[VariableState, ...]


_EVENT_KINDS = {
    pb2.EVENT_KIND_REGISTERED: "registered",
    pb2.EVENT_KIND_UPDATED: "updated",
    pb2.EVENT_KIND_DELETED: "deleted",
    pb2.EVENT_KIND_SESSION_DELETED: "session_deleted",
    pb2.EVENT_KIND_HISTORY_GONE: "history_gone",
    pb2.EVENT_KIND_CAUGHT_UP: "caught_up",
    pb2.EVENT_KIND_IMPORTED: "imported",
}

# A Value's oneof field names its type, so event values decode without the variable's definition.
_TYPE_OF_KIND: Final[Mapping[str, VariableType]] = MappingProxyType(
    {field_name: var_type for var_type, field_name in _VALUE_FIELDS.items()}
)

MISSING: Any = object()


def _time(ts: Timestamp, present: bool) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if present else None


def decode_variable(var: pb2.Variable) -> VariableInfo:
    definition = Definition(
        id=var.id,
        name=var.name,
        type=VariableType.from_proto(var.type),
        constraints=constraints_from_proto(var.constraints),
        metadata=dict(var.metadata),
        description=var.description,
    )
    return VariableInfo(
        definition=definition,
        value=value_from_proto(definition.type, var.value),
        version=var.version,
        created_at=_time(var.created_at, var.HasField("created_at")),
        updated_at=_time(var.updated_at, var.HasField("updated_at")),
    )


def decode_change_value(value: pb2.Value) -> Any:
    """The Python value of an event's ``Value``, or :data:`MISSING` when absent."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return MISSING
    return value_from_proto(_TYPE_OF_KIND[kind], value)


def decode_event(event: pb2.WatchEvent) -> ChangeEvent:
    changes = tuple(
        Change(
            id=c.id,
            name=c.name,
            version=c.version,
            value=None if (v := decode_change_value(c.value)) is MISSING else v,
        )
        for c in event.changes
    )
    return ChangeEvent(
        kind=_EVENT_KINDS.get(event.kind, "unspecified"),
        revision=event.revision,
        changes=changes,
        time=_time(event.time, event.HasField("time")),
    )
