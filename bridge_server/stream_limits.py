"""How many watch streams a frontend holds open, in all and per client connection.

Past a few thousand streams on one HTTP/2 connection new calls on it were seen to hang; past the
frontend's memory, everything would. Both limits are explicit (``--max-watch-streams``,
``--max-watch-streams-per-connection``) and a stream past either is refused at once with
RESOURCE_EXHAUSTED, which a client can act on, instead of waiting.
"""

from __future__ import annotations

from collections import Counter

from unified_bridge.errors import LimitExceededError

__all__ = ["StreamSlots"]


class StreamSlots:
    """Counts open streams; :meth:`take` raises past a limit, :meth:`give_back` frees a slot."""

    def __init__(self, total: int, per_connection: int) -> None:
        self._total = total
        self._per_connection = per_connection
        self._open = 0
        self._by_peer: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return self._open

    def take(self, peer: str) -> None:
        if self._open >= self._total:
            raise LimitExceededError(
                f"this frontend already holds {self._open} watch streams (limit {self._total}); "
                "try another frontend or later"
            )
        if self._by_peer[peer] >= self._per_connection:
            raise LimitExceededError(
                f"this connection already holds {self._by_peer[peer]} watch streams "
                f"(limit {self._per_connection}); open another connection or close a stream"
            )
        self._open += 1
        self._by_peer[peer] += 1

    def give_back(self, peer: str) -> None:
        self._open -= 1
        self._by_peer[peer] -= 1
        if self._by_peer[peer] <= 0:
            del self._by_peer[peer]
