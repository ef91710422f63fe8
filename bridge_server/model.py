"""What the store hands the servicer: plain records, independent of protobuf and of Redis."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgpack

from unified_bridge._rules import same_definition
from unified_bridge.types import VariableType

__all__ = [
    "Definition",
    "SessionInfo",
    "UpdateOutcome",
    "ValueReader",
    "VariableRecord",
    "is_id_of",
    "name_of_id",
]

# Given the variable's type, produce the raw value the caller sent (e.g. from a protobuf Value).
ValueReader = Callable[[VariableType], object]


_ID_SUFFIX: Final = re.compile(r"[0-9a-f]{8}")


def name_of_id(var_id: str) -> str:
    """The name in an id made by `new_variable_id` (`var_<name>_<8 hex digits>`)."""
    return var_id[4:-9]


def is_id_of(var_id: str, name: str) -> bool:
    """Whether `var_id` is an id of the variable called `name` (as `new_variable_id` makes them)."""
    prefix = f"var_{name}_"
    return (
        len(var_id) == len(prefix) + 8
        and var_id.startswith(prefix)
        and _ID_SUFFIX.fullmatch(var_id, len(prefix)) is not None
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Definition:
    """The immutable part of a variable: fixed at registration, never changed under the same id."""

    id: str
    name: str
    type: VariableType
    constraints: dict[str, Any]
    metadata: dict[str, str]
    description: str
    created_at_ms: int

    def to_blob(self) -> bytes:
        """What a stored record holds of the definition besides its id, name and type (see
        `bridge_server.records`): a msgpack array, with no key names to store for every variable."""
        blob: bytes = msgpack.packb(
            [self.constraints, self.metadata, self.description, self.created_at_ms], use_bin_type=True
        )
        return blob

    @classmethod
    def from_blob(cls, var_id: str, var_type: str, blob: bytes) -> Definition:
        constraints, metadata, description, created_at_ms = msgpack.unpackb(blob, raw=False)
        return cls(
            id=var_id,
            name=name_of_id(var_id),
            type=VariableType(var_type),
            constraints=constraints,
            metadata=metadata,
            description=description,
            created_at_ms=created_at_ms,
        )

    def same_shape_as(self, other: Definition) -> bool:
        """Whether registering `other` under this name would register the same variable again.

        The metadata a move from a local session adds (`MIGRATION_METADATA_KEYS`) does not count: the
        program that registered `x` locally registers the same `x` again after the move.
        """
        return same_definition(
            (self.type, self.constraints, self.metadata, self.description),
            (other.type, other.constraints, other.metadata, other.description),
        )


@dataclasses.dataclass(slots=True)  # not frozen: one per variable read, 130 ns against 450
class VariableRecord:
    definition: Definition
    value: Any
    version: int
    updated_at_ms: int
    # Its Variable message, encoded once by the first GetVariable that answers with it (a record
    # read again unchanged is the same object: see bridge_server.recent_reads).
    wire: bytes | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    created_at_ms: int
    last_active_ms: int
    ttl_seconds: int
    metadata: dict[str, str]
    variable_count: int
    revision: int

    @classmethod
    def from_reply(cls, session_id: str, reply: Sequence[Any]) -> SessionInfo:
        """From a script's {created_at, last_active, ttl, metadata, revision, variable_count}."""
        created_at, last_active, ttl, metadata, revision, count = reply
        return cls(
            session_id=session_id,
            created_at_ms=int(created_at),
            last_active_ms=int(last_active),
            ttl_seconds=int(ttl),
            metadata=msgpack.unpackb(metadata, raw=False) if metadata else {},
            variable_count=int(count),
            revision=int(revision),
        )


@dataclasses.dataclass(slots=True)  # not frozen: made per item of a batch, 130 ns against 450
class UpdateOutcome:
    """The result of one item of a batch update: `error` is None when it was applied."""

    ref: str
    id: str = ""
    version: int = 0
    error: Exception | None = None
