"""Redis key and channel names: the one place that knows the layout.

Every key of a session shares the hash tag ``{<session>}``, so every script touches one cluster
slot and the same code runs on a single Redis and on Redis Cluster.

A session id may be any printable text (``tenant:42``, ``user/7``, ``équipe``), so it is written into
keys percent-encoded: every character outside ``[A-Za-z0-9_.~-]`` becomes ``%XX`` per UTF-8 byte,
``%`` included. The encoding has an exact inverse (no two ids share keys) and its output never holds
``{`` ``}`` ``:`` or a glob character (no id can reach another session's keys or widen a SCAN).
Ids made of ``[A-Za-z0-9_.-]`` alone, the only ones earlier versions accepted, are unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Final
from urllib.parse import quote, unquote

__all__ = [
    "LAYOUT",
    "ImportStagingKeys",
    "SessionKeys",
    "import_staging_keys",
    "session_id_from_key",
    "session_key_tag",
    "session_keys",
    "session_scan_pattern",
]

_WRITTEN_AS_IS: Final = re.compile(r"[A-Za-z0-9_.~-]+")

#: The storage layout's number, part of every key: `<prefix>:2:{<session>}:...`. It changes when
#: what a key holds changes shape, so a frontend never reads another layout's keys as its own; those
#: stay for the version that wrote them (move a session across with `bridge export` and `bridge
#: import`). Layout 1 (no number) kept a field per attribute of a variable; layout 2 one record.
LAYOUT: Final = "2"


def session_key_tag(session_id: str) -> str:
    """``session_id`` as it appears inside the keys' hash tag."""
    if _WRITTEN_AS_IS.fullmatch(session_id):
        return session_id
    return quote(session_id, safe="", errors="strict")


@dataclasses.dataclass(frozen=True, slots=True)
class SessionKeys:
    session: str  # hash: created_at, last_active, ttl, metadata, revision (+ import_digest if imported)
    vars: str  # hash: id -> the variable's record (bridge_server/records.py)
    names: str  # hash: name -> the last 8 digits of its id (var_<name>_<8 hex digits>)
    log: str  # stream: change events, id <revision>-0, capped
    channel: str  # sharded pub/sub channel: the same events, live

    @property
    def stored(self) -> tuple[str, str, str, str]:
        """The keys that hold data (all carry the session TTL)."""
        return (self.session, self.vars, self.names, self.log)

    @property
    def with_channel(self) -> tuple[str, str, str, str, str]:
        return (*self.stored, self.channel)


@functools.lru_cache(maxsize=65536)  # every call builds them; sessions in use are few and reused
def session_keys(prefix: str, session_id: str) -> SessionKeys:
    base = f"{prefix}:{LAYOUT}:{{{session_key_tag(session_id)}}}"
    return SessionKeys(
        session=f"{base}:session",
        vars=f"{base}:vars",
        names=f"{base}:names",
        log=f"{base}:log",
        channel=f"{base}:events",
    )


@dataclasses.dataclass(frozen=True, slots=True)
class ImportStagingKeys:
    """Where a large import is staged, chunk by chunk, before one script moves it into place.

    Named by the import's digest (so a retried import stages onto the same keys, and two different
    imports never mix) and in the session's hash tag (so the commit can RENAME them, in one slot).
    """

    vars: str  # hash: the future `vars` hash, field for field
    names: str  # hash: the future `names` hash
    event: str  # hash: "<chunk_size>:<chunk_index>" -> that chunk's lines of the IMPORTED event

    @property
    def all(self) -> tuple[str, str, str]:
        return (self.vars, self.names, self.event)


def import_staging_keys(prefix: str, session_id: str, digest: str) -> ImportStagingKeys:
    base = f"{prefix}:{LAYOUT}:{{{session_key_tag(session_id)}}}:import:{digest}"
    return ImportStagingKeys(vars=f"{base}:vars", names=f"{base}:names", event=f"{base}:event")


def session_scan_pattern(prefix: str) -> str:
    return f"{prefix}:{LAYOUT}:{{*}}:session"


def session_id_from_key(prefix: str, key: str) -> str:
    return unquote(key[len(f"{prefix}:{LAYOUT}:{{") : -len("}:session")], errors="strict")
