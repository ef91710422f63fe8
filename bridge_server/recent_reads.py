"""Variables read recently, by the exact bytes of their stored record.

A variable's record holds everything a read answers (version, time, definition, value), so a read
that finds the same bytes as the last one finds the same variable: it is answered with what was
decoded then (and with the reply already encoded, `VariableRecord.wire`), not decoded again. A
changed variable has other bytes, so nothing here can go stale; entries of variables deleted since
only take memory, within the budget.

The budget is in bytes (each entry counts twice its record: the record and the reply made from it).
Records above a sixteenth of it are not kept. Past the budget every entry goes at once: a cache of
shortcuts, cheap to rebuild, needs no LRU bookkeeping on the read path.
"""

from __future__ import annotations

from bridge_server.model import VariableRecord

__all__ = ["RecentReads"]

_Key = tuple[str, str]  # (session id, variable id)


class RecentReads:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._max_entry = max_bytes // 16
        self._entries: dict[_Key, tuple[bytes, VariableRecord]] = {}
        self._bytes = 0

    def get(self, key: _Key, raw: bytes) -> VariableRecord | None:
        """What ``raw`` decoded to when ``key`` was last read with these very bytes, else None."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] == raw else None

    def remember(self, key: _Key, raw: bytes, record: VariableRecord) -> None:
        size = 2 * len(raw)
        if size > self._max_entry:
            return
        replaced = self._entries.pop(key, None)
        if replaced is not None:
            self._bytes -= 2 * len(replaced[0])
        if self._bytes + size > self._max_bytes:
            self._entries.clear()
            self._bytes = 0
        self._entries[key] = (raw, record)
        self._bytes += size

    @property
    def size_bytes(self) -> int:
        return self._bytes
