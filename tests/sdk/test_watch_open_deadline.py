"""A frontend that accepts a watch stream but never sends an event is left after the open deadline,
for the next frontend, instead of being waited for forever."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.harness.relay import Relay
from unified_bridge import connect, connect_async


class _HangingWatches(Relay):
    """Forwards unary calls to a real frontend; accepts watch streams and then sends nothing."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.released = threading.Event()

    def stream(self, method: str, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self.released.wait(30)
        yield from ()


@pytest.fixture
def hanging(frontend, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    relay = _HangingWatches(frontend.target)
    # Every watch starts at the first frontend of the list (the SDK picks one at random).
    monkeypatch.setattr("unified_bridge._watch.random.randrange", lambda n: 0)
    yield relay.target
    relay.released.set()
    relay.stop()


def _written(frontend: Any, session_id: str) -> None:
    with connect(frontend.target) as writer, writer.session(session_id) as ctx:
        ctx["x"] = 1


def test_watch_moves_on_from_a_frontend_that_sends_nothing(frontend, hanging, session_id) -> None:
    _written(frontend, session_id)
    with connect(f"{hanging},{frontend.target}", timeout=0.5) as client:
        ctx = client.session(session_id, cache=False)
        events = ctx.watch(from_revision=0)
        first = next(events)  # without an open deadline this waits on the hanging frontend forever
        events.close()  # type: ignore[attr-defined]
    assert (first.kind, first.revision) == ("registered", 1)


async def test_async_watch_moves_on_too(frontend, hanging, session_id) -> None:
    _written(frontend, session_id)
    async with connect_async(f"{hanging},{frontend.target}", timeout=0.5) as client:
        ctx = await client.session(session_id, cache=False)
        events = ctx.watch(from_revision=0)
        first = await anext(events)
        await events.aclose()  # type: ignore[attr-defined]
    assert (first.kind, first.revision) == ("registered", 1)


def test_the_cache_follower_moves_on_too(frontend, hanging, session_id) -> None:
    _written(frontend, session_id)
    with connect(f"{hanging},{frontend.target}", timeout=0.5) as client, client.session(session_id) as ctx:
        assert ctx.wait_for_cache(30)  # caught up through the second frontend
        assert ctx.watch_target == frontend.target
