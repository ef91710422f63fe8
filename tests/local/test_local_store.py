"""The local backend on its own: its log, its limits, its concurrency. No frontend involved."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from unified_bridge import (
    BridgeError,
    LimitExceededError,
    LocalSessionContext,
    SessionLimits,
    ValidationError,
    VariableType,
)


def test_ids_versions_and_revision() -> None:
    with LocalSessionContext("local-1") as ctx:
        var_id = ctx.register_variable("x", VariableType.INTEGER, 0)
        assert var_id.startswith("var_x_")
        assert len(var_id) == len("var_x_") + 8
        assert ctx.revision == 1
        assert ctx.register_variable("x", VariableType.INTEGER, 0) == var_id  # a repeat: no mutation
        assert ctx.revision == 1
        assert [ctx.update_variable("x", i) for i in (1, 2, 3)] == [1, 2, 3]
        assert ctx.update_variables({"x": 4}) == {"x": True}
        assert ctx.revision == 5
        assert ctx.get_variable_info(var_id)["version"] == 4


def test_mutable_values_are_handed_out_as_copies() -> None:
    with LocalSessionContext() as ctx:
        ctx.register_variable("t", VariableType.TENSOR, [[1.0, 2.0], [3.0, 4.0]])
        ctx.register_variable("e", VariableType.EMBEDDING, [1.0, 2.0])
        for read in (ctx["t"], ctx.get_variables(["t"])["t"], ctx.get_variable_info("t")["value"]):
            read[0][0] = 99.0
        ctx["e"].append(5.0)
        assert ctx["t"] == [[1.0, 2.0], [3.0, 4.0]]
        assert ctx["e"] == [1.0, 2.0]
        events = ctx.watch(from_revision=0)
        next(events).changes[0].value[0][0] = -1.0
        assert ctx["t"] == [[1.0, 2.0], [3.0, 4.0]]


def test_watch_replays_from_a_capped_log() -> None:
    with LocalSessionContext(limits=SessionLimits(change_log_length=3)) as ctx:
        ctx["x"] = 0
        for i in range(1, 5):
            ctx["x"] = i
        events = ctx.watch(from_revision=0)
        gone = next(events)
        assert (gone.kind, gone.revision) == ("history_gone", 2)
        assert [(e.kind, e.revision, e.changes[0].value) for e in (next(events) for _ in range(3))] == [
            ("updated", 3, 2),
            ("updated", 4, 3),
            ("updated", 5, 4),
        ]
        ctx["x"] = 5  # live, after the replay
        assert next(events).changes[0].value == 5


def test_delete_session_ends_watchers() -> None:
    ctx = LocalSessionContext()
    ctx["x"] = 1
    events = ctx.watch()
    received: list[str] = []
    follower = threading.Thread(target=lambda: received.extend(e.kind for e in events))
    follower.start()
    ctx["x"] = 2
    assert ctx.delete_session() is True
    follower.join(10)
    assert not follower.is_alive()
    assert received == ["updated", "session_deleted"]
    with pytest.raises(BridgeError, match="closed"):
        ctx["x"] = 3
    with pytest.raises(BridgeError, match="closed"):
        _ = ctx["x"]


def test_limits_have_the_frontends_messages() -> None:
    limits = SessionLimits(max_variables=2, max_value_bytes=64, max_batch_size=2, max_description_length=5)
    with LocalSessionContext("limited", limits=limits) as ctx:
        ctx["a"], ctx["b"] = 1, 2
        with pytest.raises(LimitExceededError, match="session limited already holds 2 variables"):
            ctx["c"] = 3
        ctx.delete_variable("b")
        with pytest.raises(LimitExceededError, match=r"value of s is \d+ bytes, above the limit of 64 bytes"):
            ctx.register_variable("s", VariableType.STRING, "x" * 100)
        with pytest.raises(LimitExceededError, match="description is 6 characters"):
            ctx.register_variable("d", VariableType.INTEGER, 1, description="sixsix")
        with pytest.raises(LimitExceededError, match="batch of 3 items"):
            ctx.update_variables({"a": 1, "b": 2, "c": 3})
        with pytest.raises(ValidationError, match="form of a variable id"):
            ctx.register_variable("var_x_0123abcd", VariableType.INTEGER, 1)
    with pytest.raises(ValidationError, match="positive integer"):
        SessionLimits(max_variables=0)


def test_reads_take_no_lock() -> None:
    with LocalSessionContext() as ctx:
        ctx["x"], ctx["y"] = 1, 10
        inside, release = threading.Event(), threading.Event()

        def slow(value: int) -> int:
            inside.set()
            release.wait(10)
            return value + 1

        with ThreadPoolExecutor(1) as pool:
            writing = pool.submit(ctx.update, "x", slow)
            inside.wait(10)
            # The writer holds the store's lock right now; every kind of read still answers.
            assert (ctx["x"], ctx.v.y, ctx.get_variable("y"), "y" in ctx) == (1, 10, 10, True)
            assert ctx.get_variables(["x", "y"]) == {"x": 1, "y": 10}
            release.set()
            assert writing.result(10) == 2


def test_a_multi_read_never_sees_half_an_atomic_batch() -> None:
    with LocalSessionContext() as ctx:
        ctx["a"], ctx["b"] = 0, 0
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                ctx.update_variables({"a": i, "b": i}, atomic=True)

        with ThreadPoolExecutor(1) as pool:
            pool.submit(writer)
            try:
                torn = [
                    pair
                    for pair in (ctx.get_variables(["a", "b"]) for _ in range(20_000))
                    if pair["a"] != pair["b"]
                ]
            finally:
                stop.set()
        assert torn == []
        assert ctx["a"] > 0
