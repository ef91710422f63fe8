"""One variable as Redis stores it: a record, the one field of the session's vars hash named by the
variable's id.

    <version> <updated_at_ms> <type> <definition length>\\n<definition blob><value blob>

The name is not stored: it is the middle of the id (`var_<name>_<8 hex digits>`, see
`bridge_server.model.name_of_id`). One field per variable, and its name's entry in the names hash,
keep a small variable near 200 B of Redis memory, where a field per attribute cost 650 B, and let a
read or an update touch one field. The scripts write records (`ub_record` in the prelude of
`bridge_server.scripts`) and read the header of one (`ub_parse`); the frontend reads them whole
here. The definition blob holds what the header and the id do not: constraints, metadata,
description and creation time (`Definition.to_blob`).
"""

from __future__ import annotations

import dataclasses

__all__ = ["Record", "decode_record"]


@dataclasses.dataclass(slots=True)  # not frozen: one per variable read, 130 ns against 450
class Record:
    version: int
    updated_at_ms: int
    type: str
    definition_blob: bytes
    value_blob: bytes


def decode_record(raw: bytes) -> Record:
    header_end = raw.index(b"\n")
    version, updated, var_type, length = raw[:header_end].split(b" ", 3)
    definition_end = header_end + 1 + int(length)
    return Record(
        int(version),
        int(updated),
        var_type.decode(),
        raw[header_end + 1 : definition_end],
        raw[definition_end:],
    )
