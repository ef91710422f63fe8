"""Change events: the binary layout the Lua scripts write, and its decoding.

The scripts cannot encode msgpack (fakeredis's Lua has no cmsgpack), so an event is plain bytes:

    event  := "UB1" SP revision SP kind SP time_ms SP count "\\n" change* [writer]
    change := version SP id SP name SP type SP value_length "\\n" value_bytes

`value_length` is -1 for a deletion and -2 for a change whose value the event does not carry (the
variable exists at that version: read it; a large import lists its variables this way); in both
cases no value bytes follow. Ids and names never hold a space or a
newline (see `unified_bridge.types.NAME_PATTERN`), and value bytes are length-prefixed, so the
layout parses without ambiguity. The type travels with each change so that a replayed value
decodes even after its variable was deleted. The same bytes go to the change log and to the live
channel, except `writer`: the token of the context that made the write, on the channel's copy only
(its own watch stream is not sent the event in full, see `bridge_server.watch`). It follows the last
change, where a reader that knows no tokens stops reading.
"""

from __future__ import annotations

import dataclasses
import enum
import re

from unified_bridge._rules import MAX_WRITER_LENGTH
from unified_bridge.proto import unified_bridge_pb2 as pb

__all__ = [
    "EVENT_MAGIC",
    "VALUE_DELETED",
    "VALUE_OMITTED",
    "ChangeEvent",
    "EventKind",
    "HeldWrite",
    "LiveEvent",
    "VariableChange",
    "decode_event",
]

# The scripts' prelude (bridge_server/scripts.py) is built from these, so the layout is written here
# once for Python and once for Lua.
EVENT_MAGIC = b"UB1"
# Value lengths that mean no value bytes follow: a deletion, and a value the event omits (read it).
VALUE_DELETED = -1
VALUE_OMITTED = -2


class EventKind(enum.IntEnum):
    """The proto's EventKind; the scripts' prelude defines EVENT_<NAME> from these numbers."""

    REGISTERED = pb.EVENT_KIND_REGISTERED
    UPDATED = pb.EVENT_KIND_UPDATED
    DELETED = pb.EVENT_KIND_DELETED
    SESSION_DELETED = pb.EVENT_KIND_SESSION_DELETED
    HISTORY_GONE = pb.EVENT_KIND_HISTORY_GONE
    CAUGHT_UP = pb.EVENT_KIND_CAUGHT_UP
    IMPORTED = pb.EVENT_KIND_IMPORTED
    OWN_WRITES = pb.EVENT_KIND_OWN_WRITES


@dataclasses.dataclass(frozen=True, slots=True)
class VariableChange:
    id: str
    name: str
    type: str
    version: int
    value: bytes | None  # msgpack-encoded value; None for a deletion or a value the event omits


@dataclasses.dataclass(frozen=True, slots=True)
class ChangeEvent:
    revision: int
    kind: EventKind
    time_ms: int
    changes: tuple[VariableChange, ...] = ()
    # The writing context's token, on a live event only: not part of what the write was.
    writer: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class HeldWrite:
    """A watcher's own write held back (see `bridge_server.watch`): what it changed, without values."""

    revision: int
    time_ms: int
    changes: tuple[tuple[str, str, int], ...]  # (id, name, version)
    size: int  # about what it takes in memory and in a message

    @classmethod
    def of(cls, event: ChangeEvent) -> HeldWrite:
        changes = tuple((c.id, c.name, c.version) for c in event.changes)
        return cls(
            event.revision, event.time_ms, changes, 32 + sum(len(i) + len(n) + 16 for i, n, _ in changes)
        )


def decode_event(data: bytes) -> ChangeEvent:
    """Parse one event; raises ValueError on bytes that are not an event."""
    end = data.index(b"\n")
    magic, revision, kind, time_ms, count = data[:end].split(b" ")
    if magic != EVENT_MAGIC:
        raise ValueError(f"not a change event: {data[:16]!r}")
    position = end + 1
    changes = []
    for _ in range(int(count)):
        end = data.index(b"\n", position)
        version, var_id, name, var_type, length = data[position:end].split(b" ")
        position = end + 1
        size = int(length)
        value = None
        if size < VALUE_OMITTED:
            raise ValueError(f"bad value length {size} in a change event")
        if size >= 0:
            value = bytes(data[position : position + size])
            position += size
        changes.append(VariableChange(var_id.decode(), name.decode(), var_type.decode(), int(version), value))
    return ChangeEvent(
        int(revision),
        EventKind(int(kind)),
        int(time_ms),
        tuple(changes),
        _writer_of(data[position:]),
    )


# What `unified_bridge._rules.check_writer` lets a request carry (an empty token is no token).
_WRITER_TOKEN = re.compile(rb"[A-Za-z0-9_-]{1,%d}" % MAX_WRITER_LENGTH)


def _writer_of(tail: bytes) -> str:
    """The writer token after an event's last change; "" when there is none, or nothing like one."""
    return tail.decode() if tail and _WRITER_TOKEN.fullmatch(tail) else ""


class LiveEvent:
    """An event as it came in on a session's channel, one object handed to every watcher of it: it is
    decoded once (on first use) and encoded for the wire once (`wire`, set by the first watcher that
    sends it), however many watch the session on this frontend."""

    __slots__ = ("_event", "data", "wire")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.wire: bytes | None = None
        self._event: ChangeEvent | None = None

    @property
    def event(self) -> ChangeEvent:
        """The decoded event; raises ValueError on bytes that are not an event."""
        if self._event is None:
            self._event = decode_event(self.data)
        return self._event
