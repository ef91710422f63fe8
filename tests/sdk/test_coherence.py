"""Cache coherence across contexts, frontends and processes (real Redis, real frontends)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from unified_bridge import SessionContext, VariableType, connect
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]


def wait_until_seen(reader: SessionContext, writer: SessionContext) -> None:
    """Until the reader's watch stream has delivered everything the writer wrote (test timeout bounds it)."""
    while reader.revision < writer.revision:
        time.sleep(0.001)


@pytest.fixture
def two_frontends(frontend_factory) -> tuple[Any, Any]:
    return frontend_factory(), frontend_factory()


@pytest.fixture
def writer_and_reader(two_frontends, session_id: str) -> Iterator[tuple[SessionContext, SessionContext]]:
    first, second = two_frontends
    with (
        connect(first.target) as c1,
        connect(second.target) as c2,
        c1.session(session_id) as writer,
        c2.session(session_id) as reader,
    ):
        yield writer, reader


def test_update_in_one_context_reaches_the_others_cache(writer_and_reader) -> None:
    writer, reader = writer_and_reader
    writer.register_variable("x", VariableType.INTEGER, 0)
    assert reader["x"] == 0
    assert reader["x"] == 0  # a hit now
    writer["x"] = 1
    wait_until_seen(reader, writer)
    hits = reader.cache_stats()["hits"]
    assert reader["x"] == 1
    # The event carried the value: the reader's entry was refreshed, not just dropped.
    assert reader.cache_stats()["hits"] == hits + 1


def test_delete_elsewhere_is_seen(writer_and_reader) -> None:
    writer, reader = writer_and_reader
    writer["gone"] = 1
    assert reader["gone"] == 1
    writer.delete_variable("gone")
    wait_until_seen(reader, writer)
    assert "gone" not in reader


def test_reregistration_elsewhere_with_another_type(writer_and_reader) -> None:
    writer, reader = writer_and_reader
    writer["morph"] = 1
    reader["morph"] = 2  # the reader now knows morph as an integer
    writer.delete_variable("morph")
    writer.register_variable("morph", VariableType.STRING, "text")
    # Until the delete reaches the reader, it validates against what it knows (an integer) and may refuse
    # the text without asking the server, as a cached read may return the old value until then.
    wait_until_seen(reader, writer)
    reader["morph"] = "more text"  # validated against the new definition, not the remembered one
    wait_until_seen(writer, reader)  # the writer's cache is coherent once its stream has the write
    assert writer.get_variable("morph") == "more text"


class _SlowReads:
    """A stub whose GetVariable runs `during_read` between the server's answer and the caller seeing it."""

    def __init__(self, stub: pb_grpc.UnifiedBridgeStub) -> None:
        self._stub = stub
        self.during_read: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub, name)

    @property
    def GetVariable(self) -> Any:
        def call(request: Any, timeout: float | None = None) -> Any:
            response = self._stub.GetVariable(request, timeout=timeout)
            hook, self.during_read = self.during_read, None
            if hook is not None:
                hook()
            return response

        return call


def test_read_in_flight_during_an_invalidation_does_not_fill(two_frontends, session_id: str) -> None:
    first, second = two_frontends
    with grpc.insecure_channel(second.target) as channel, connect(first.target) as c1:
        slow = _SlowReads(pb_grpc.UnifiedBridgeStub(channel))
        with c1.session(session_id) as writer, SessionContext(slow, session_id) as reader:
            writer.register_variable("race", VariableType.INTEGER, 0)
            wait_until_seen(reader, writer)

            def update_and_let_the_event_arrive() -> None:
                writer.update_variable("race", 1)
                wait_until_seen(reader, writer)

            slow.during_read = update_and_let_the_event_arrive
            assert reader["race"] == 0  # the answer that was already on its way
            assert reader["race"] == 1  # ... was not cached: this read went to the server
            assert reader["race"] == 1


def test_stream_drop_clears_the_cache_and_resumes_elsewhere(frontend_factory, session_id: str) -> None:
    frontends = {f.target: f for f in (frontend_factory(), frontend_factory())}
    writer_frontend = frontend_factory()
    with (
        connect(",".join(frontends)) as c_reader,
        connect(writer_frontend.target) as c_writer,
        c_reader.session(session_id) as reader,
        c_writer.session(session_id) as writer,
    ):
        writer.register_variable("s", VariableType.INTEGER, 0)
        wait_until_seen(reader, writer)
        assert reader["s"] == 0
        assert reader.cache_stats()["size"] == 1
        watched = reader.watch_target
        assert watched in frontends
        reconnects = reader._follower.reconnects  # type: ignore[union-attr]

        frontends[watched].stop(grace=0)
        while reader._follower.reconnects == reconnects:  # type: ignore[union-attr]
            time.sleep(0.001)
        writer["s"] = 1  # while the reader may have no stream at all
        assert reader.wait_for_cache()
        assert reader.watch_target != watched
        assert reader["s"] == 1  # never the old value: the cache was dropped with the stream
        writer["s"] = 2
        wait_until_seen(reader, writer)
        assert reader["s"] == 2


def test_closing_stops_the_follower(client, session_id: str) -> None:
    ctx = client.session(session_id)
    follower = ctx._follower
    ctx.close()
    assert follower is not None
    assert not follower._thread.is_alive()
    assert not any(t.name == f"ub-watch-{session_id}" for t in threading.enumerate())


def test_increments_from_many_contexts_are_never_lost(two_frontends, session_id: str) -> None:
    first, second = two_frontends
    with connect(f"{first.target},{second.target}") as client:
        contexts = [client.session(session_id) for _ in range(4)]
        contexts[0].register_variable("shared_counter", VariableType.INTEGER, 0)

        def work(i: int) -> None:
            for _ in range(25):
                contexts[i % 4].update("shared_counter", lambda v: v + 1)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(work, range(8)))
        assert contexts[1].get_variable_info("shared_counter")["value"] == 200
        for ctx in contexts:
            ctx.close()


@pytest.fixture
def peer(frontend_factory, session_id: str) -> Iterator[Any]:
    """Process B: its own context and cache, on its own frontend."""
    frontend_b = frontend_factory()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "sdk"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.sdk._peer", frontend_b.target, session_id],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    assert json.loads(process.stdout.readline())["ready"] is True

    def ask(**command: Any) -> Any:
        process.stdin.write(json.dumps(command) + "\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
        return json.loads(process.stdout.readline())  # type: ignore[union-attr]

    yield ask
    process.stdin.close()
    assert process.wait() == 0
    process.stdout.close()


def test_cross_process_coherence(peer, frontend, session_id: str) -> None:
    with connect(frontend.target) as client, client.session(session_id) as ctx_a:
        ctx_a.register_variable("x", VariableType.INTEGER, 0)
        assert peer(op="read", name="x") == {"value": 0}
        assert peer(op="read", name="x") == {"value": 0}
        hits_before = peer(op="stats")["hits"]
        for new_value in (1, 2, 3):
            ctx_a["x"] = new_value  # returned: B must converge and then never go back
            reply = peer(op="await", name="x", value=new_value, then=1000)
            assert reply["stale_after"] == 0
        assert peer(op="stats")["hits"] > hits_before + 3000  # B read from its cache, not the server
