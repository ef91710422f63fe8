"""AsyncSessionContext against real frontends over a real Redis: the reference behaviours, async."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from unified_bridge import (
    AlreadyExistsError,
    AsyncSessionContext,
    ValidationError,
    VariableNotFoundError,
    VariableType,
    VersionConflictError,
    connect_async,
)
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


async def test_register_get_list(actx: AsyncSessionContext) -> None:
    var_id = await actx.register_variable(
        "test_var",
        VariableType.FLOAT,
        3.14,
        constraints={"min": 0, "max": 10},
        metadata={"purpose": "testing"},
    )
    assert var_id.startswith("var_test_var_")
    assert await actx.get_variable("test_var") == 3.14
    assert await actx.get_variable(var_id) == 3.14
    assert [v["name"] for v in await actx.list_variables()] == ["test_var"]
    assert (
        await actx.register_variable("test_var", "float", 3.14, {"min": 0, "max": 10}, {"purpose": "testing"})
        == var_id
    )
    with pytest.raises(AlreadyExistsError):
        await actx.register_variable("test_var", VariableType.INTEGER, 1)


async def test_stub_constructor_creates_the_session(frontend, session_id: str) -> None:
    async with grpc.aio.insecure_channel(frontend.target) as channel:
        async with AsyncSessionContext(pb_grpc.UnifiedBridgeStub(channel), session_id) as ctx:
            await ctx.set("x", 1)
        # Lazy start: the first call creates the session and starts the follower.
        again = AsyncSessionContext(pb_grpc.UnifiedBridgeStub(channel), session_id)
        assert await again.get_variable("x") == 1
        await again.close()


async def test_update_delete_and_versions(actx: AsyncSessionContext) -> None:
    await actx.register_variable("counter", VariableType.INTEGER, 0)
    assert await actx.update_variable("counter", 42) == 1
    assert await actx.get_variable("counter") == 42
    with pytest.raises(VersionConflictError):
        await actx.update_variable("counter", 43, expected_version=0)
    await actx.delete_variable("counter")
    assert not await actx.contains("counter")
    with pytest.raises(VariableNotFoundError, match="not found"):
        await actx.get_variable("counter")


async def test_constraints_and_early_validation(actx: AsyncSessionContext) -> None:
    await actx.register_variable("percentage", VariableType.FLOAT, 0.5, constraints={"min": 0.0, "max": 1.0})
    with pytest.raises(ValidationError, match="above maximum"):
        await actx.update_variable("percentage", 1.5)
    await actx.register_variable("typed", VariableType.INTEGER, 42)
    with pytest.raises(ValueError, match="Cannot convert"):
        await actx.set("typed", "not a number")
    assert await actx.get_variable("percentage") == 0.5
    assert await actx.get_variable("typed") == 42


async def test_batch_operations(actx: AsyncSessionContext) -> None:
    for name, value in (("a", 1), ("b", 2)):
        await actx.register_variable(name, VariableType.INTEGER, value)
    await actx.register_variable("c", VariableType.INTEGER, 3, constraints={"max": 10})
    assert await actx.get_variables(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(ValidationError):
        await actx.update_variables({"a": 100, "b": 200, "c": 300}, atomic=True)
    assert await actx.get_variables(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}
    results = await actx.update_variables({"a": 10, "b": 20, "c": 30})
    assert results["a"] is True
    assert results["b"] is True
    assert isinstance(results["c"], str)
    assert await actx.get_variables(["a", "b", "c"]) == {"a": 10, "b": 20, "c": 3}


async def test_batch_context_manager_and_proxy(actx: AsyncSessionContext) -> None:
    for i in range(3):
        await actx.set(f"batch_{i}", i)
    async with actx.batch_updates() as batch:
        for i in range(3):
            batch[f"batch_{i}"] = i * 10
        assert await actx.get_variable("batch_2") == 2
    assert batch.results == {f"batch_{i}": True for i in range(3)}
    var = actx.variable("batch_1")
    for i in range(3):
        await var.set(i)
        assert await var.get() == i
    assert await var.update(lambda v: v + 1) == 3


@pytest.mark.bridged_only  # the near cache's counters and TTL
async def test_cache_hits_invalidation_and_ttl(actx: AsyncSessionContext) -> None:
    await actx.register_variable("cached", VariableType.STRING, "v1")
    await actx.get_variable("cached")
    before = actx.cache_stats()
    for _ in range(10):
        assert await actx.get_variable("cached") == "v1"
    assert actx.cache_stats()["hits"] == before["hits"] + 10
    await actx.set("cached", "v2")
    assert await actx.get_variable("cached") == "v2"
    actx.set_cache_ttl(timedelta(0))
    misses = actx.cache_stats()["misses"]
    await actx.get_variable("cached")
    assert actx.cache_stats()["misses"] == misses + 1


async def test_concurrent_functional_updates(frontend, session_id: str) -> None:
    async with connect_async(frontend.target) as client:
        contexts = [await client.session(session_id) for _ in range(2)]
        await contexts[0].register_variable("counter", VariableType.INTEGER, 0)

        async def work(i: int) -> None:
            for _ in range(25):
                await contexts[i % 2].update("counter", lambda v: v + 1)

        await asyncio.gather(*(work(i) for i in range(8)))
        assert (await contexts[1].get_variable_info("counter"))["value"] == 200


async def test_session_isolation(frontend, session_id: str) -> None:
    async with connect_async(frontend.target) as client:
        ctx1 = await client.session(session_id + "_1")
        ctx2 = await client.session(session_id + "_2")
        await ctx1.register_variable("isolated", VariableType.STRING, "session1")
        await ctx2.register_variable("isolated", VariableType.STRING, "session2")
        await ctx1.set("isolated", "updated1")
        assert await ctx1.get_variable("isolated") == "updated1"
        assert await ctx2.get_variable("isolated") == "session2"


async def test_coherence_between_contexts(frontend_factory, session_id: str) -> None:
    f1, f2 = frontend_factory(), frontend_factory()
    async with connect_async(f1.target) as c1, connect_async(f2.target) as c2:
        writer, reader = await c1.session(session_id), await c2.session(session_id)
        await writer.register_variable("x", VariableType.INTEGER, 0)
        assert await reader.get_variable("x") == 0
        await writer.set("x", 1)
        while reader.revision < writer.revision:
            await asyncio.sleep(0.001)
        assert await reader.get_variable("x") == 1


async def test_watch(actx: AsyncSessionContext) -> None:
    await actx.set("watched", 0)
    await actx.update_variable(
        "watched", 1
    )  # a write's reply carries the revision (a registration's does not)
    start = actx.revision
    events = actx.watch(["watched"], from_revision=start)
    await actx.set("other", 5)
    await actx.set("watched", 2)
    first = await anext(events)
    await events.aclose()  # type: ignore[attr-defined]
    assert (first.kind, first.changes[0].name, first.changes[0].value) == ("updated", "watched", 2)


async def test_close_stops_the_task(frontend, session_id: str) -> None:
    async with connect_async(frontend.target) as client:
        ctx = await client.session(session_id)
        task = ctx._follower._task  # type: ignore[union-attr]
        assert task is not None
        assert not task.done()
        await ctx.close()
        assert task.done()


async def test_async_client_lists_and_deletes_sessions(frontend, session_id: str) -> None:
    async with connect_async(frontend.target) as async_client:
        ctx = await async_client.session(session_id, cache=False)
        assert session_id in await async_client.list_sessions()
        assert await async_client.delete_session(session_id) is True
        assert await async_client.delete_session(session_id) is False
        assert session_id not in await async_client.list_sessions()
        await ctx.close()
