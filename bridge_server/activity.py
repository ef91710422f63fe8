"""When this frontend last refreshed each session's TTL, so that reads and updates refresh it only
now and then.

Registrations, deletions, imports and heartbeats refresh a session's TTL every time. A read, an
update or a watcher's check refreshes it only when the last refresh seen by this frontend is older
than `min(refresh_seconds, ttl / 4)`: a session in use keeps living, a read is not a write (under
`appendfsync always` every write is a disk flush), and an update writes only what it changes.
Forgetting this state costs one extra refresh, never a lost session: it is a hint.
"""

from __future__ import annotations

import time

__all__ = ["ActivityTracker"]


class ActivityTracker:
    def __init__(self, refresh_seconds: float, max_sessions: int) -> None:
        self._refresh_seconds = refresh_seconds
        self._max_sessions = max_sessions
        # session -> (monotonic time of the last refresh, interval before the next one is due)
        self._sessions: dict[str, tuple[float, float]] = {}

    def due(self, session_id: str) -> bool:
        entry = self._sessions.get(session_id)
        return entry is None or time.monotonic() - entry[0] >= entry[1]

    def refreshed(self, session_id: str, ttl_seconds: float | None = None) -> None:
        """The session's TTL was just refreshed (by a read that touched, a write, a heartbeat...)."""
        if ttl_seconds is not None:
            interval = min(self._refresh_seconds, ttl_seconds / 4)
        else:
            entry = self._sessions.get(session_id)
            interval = entry[1] if entry else 0.0  # TTL unknown: the next read refreshes and learns it
        if len(self._sessions) >= self._max_sessions and session_id not in self._sessions:
            self._sessions.clear()
        self._sessions[session_id] = (time.monotonic(), interval)

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
