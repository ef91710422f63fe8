"""Small helpers shared by the integration tests: raw-stub calls, status checks, Redis key checks."""

from __future__ import annotations

import queue
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import redis

from bridge_server.keys import LAYOUT, session_key_tag
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

Stub = pb_grpc.UnifiedBridgeStub

# How a test waits for something Redis does on its own clock (expiry): bounded polling, no timing asserts.


def rpc_error(call: Callable[..., Any], request: Any) -> grpc.RpcError:
    """The error a unary call fails with; fails the test if the call succeeds."""
    try:
        response = call(request, timeout=10)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"expected the call to fail, it returned {response!r}")


def assert_status(error: grpc.RpcError, code: grpc.StatusCode, message: str | None = None) -> None:
    """The error has `code` and, when given, exactly `message` as its details."""
    assert error.code() == code, (error.code(), error.details())
    if message is not None:
        assert error.details() == message


def create_session(stub: Stub, session_id: str, **fields: Any) -> pb.Session:
    return stub.CreateSession(pb.CreateSessionRequest(session_id=session_id, **fields)).session


def register(
    stub: Stub,
    session_id: str,
    name: str,
    var_type: int,
    value: pb.Value,
    constraints: pb.Constraints | None = None,
    **fields: Any,
) -> pb.Variable:
    request = pb.RegisterVariableRequest(
        session_id=session_id, name=name, type=var_type, value=value, constraints=constraints, **fields
    )
    return stub.RegisterVariable(request).variable


def get(stub: Stub, session_id: str, ref: str) -> pb.Variable:
    return stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id=ref))


def set_value(
    stub: Stub, session_id: str, ref: str, value: pb.Value, **fields: Any
) -> pb.SetVariableResponse:
    return stub.SetVariable(
        pb.SetVariableRequest(session_id=session_id, name_or_id=ref, value=value, **fields)
    )


def register_int(stub: Stub, session_id: str, name: str, value: int = 0, **fields: Any) -> pb.Variable:
    return register(stub, session_id, name, pb.VARIABLE_TYPE_INTEGER, pb.Value(integer_value=value), **fields)


def set_int(stub: Stub, session_id: str, ref: str, value: int, **fields: Any) -> pb.SetVariableResponse:
    return set_value(stub, session_id, ref, pb.Value(integer_value=value), **fields)


def revision(stub: Stub, session_id: str) -> int:
    return stub.GetSession(pb.GetSessionRequest(session_id=session_id)).revision


def session_redis_keys(client: redis.Redis, session_id: str) -> list[bytes]:
    """Every key of the session's hash tag (the layout: `ub:<LAYOUT>:{<session, encoded>}:...`)."""
    return list(client.scan_iter(match=f"ub:{LAYOUT}:{{{session_key_tag(session_id)}}}:*", count=1000))


class Watch:
    """A WatchSession stream read one event at a time, each wait bounded (over `EventReader`)."""

    def __init__(self, stub: Stub, session_id: str, **fields: Any) -> None:
        self._reader = EventReader(stub, session_id, **fields)

    def next(self) -> pb.WatchEvent:
        event = self._reader.next()
        assert event is not None, "the watch stream ended"
        return event

    def caught_up(self) -> pb.WatchEvent:
        """Read events up to and including CAUGHT_UP; returns the CAUGHT_UP marker."""
        for _ in range(100_000):
            event = self.next()
            if event.kind == pb.EVENT_KIND_CAUGHT_UP:
                return event
        raise AssertionError("no CAUGHT_UP event")

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.close()


class EventReader:
    """Reads a WatchSession stream on a thread, so a test can wait for events with a bound."""

    def __init__(
        self, stub: Any, session_id: str, from_revision: int = 0, from_now: bool = False, **fields: Any
    ) -> None:
        self.call = stub.WatchSession(
            pb.WatchSessionRequest(
                session_id=session_id, from_revision=from_revision, from_now=from_now, **fields
            )
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


def scrape_metrics(port: int) -> str:
    """A frontend's /metrics page (`--metrics-port`)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric_sample(text: str, line_start: str) -> float:
    """The value of the sample whose line starts with ``line_start`` in a /metrics page."""
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_start!r} in:\n{text}")
