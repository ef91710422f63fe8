"""Small request builders shared by the raw-gRPC integration tests."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from unified_bridge.proto import unified_bridge_pb2 as pb


def create_session(stub: Any, session_id: str, **fields: Any) -> pb.CreateSessionResponse:
    return stub.CreateSession(pb.CreateSessionRequest(session_id=session_id, **fields))


def register_int(stub: Any, session_id: str, name: str, value: int = 0, **fields: Any) -> pb.Variable:
    response = stub.RegisterVariable(
        pb.RegisterVariableRequest(
            session_id=session_id,
            name=name,
            type=pb.VARIABLE_TYPE_INTEGER,
            value=pb.Value(integer_value=value),
            **fields,
        )
    )
    return response.variable


def set_int(stub: Any, session_id: str, name: str, value: int, **fields: Any) -> pb.SetVariableResponse:
    return stub.SetVariable(
        pb.SetVariableRequest(
            session_id=session_id, name_or_id=name, value=pb.Value(integer_value=value), **fields
        )
    )


class EventReader:
    """Reads a WatchSession stream on a thread, so a test can wait for events with a bound."""

    def __init__(self, stub: Any, session_id: str, from_revision: int = 0, from_now: bool = False) -> None:
        self.call = stub.WatchSession(
            pb.WatchSessionRequest(session_id=session_id, from_revision=from_revision, from_now=from_now)
        )
        self._events: queue.Queue[pb.WatchEvent | BaseException | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for event in self.call:
                self._events.put(event)
            self._events.put(None)
        except BaseException as exc:
            self._events.put(exc)

    def next(self, timeout: float = 10) -> pb.WatchEvent | None:
        """The next event; None when the stream ended cleanly; raises what the stream raised."""
        item = self._events.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    def until_caught_up(self) -> list[pb.WatchEvent]:
        """Events before CAUGHT_UP (the replay), consuming CAUGHT_UP itself."""
        replayed = []
        while (event := self.next()) is not None and event.kind != pb.EVENT_KIND_CAUGHT_UP:
            replayed.append(event)
        return replayed

    def __iter__(self) -> Iterator[pb.WatchEvent]:
        while (event := self.next()) is not None:
            yield event

    def close(self) -> None:
        self.call.cancel()
        self._thread.join(timeout=10)
