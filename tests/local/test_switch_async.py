"""The asyncio local-first context moving to the bridge: the same guarantees as the blocking one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bridge_server.testing import free_port
from unified_bridge import (
    AlreadyExistsError,
    AsyncBridgeClient,
    AsyncLocalFirstContext,
    BridgeUnavailableError,
    ValidationError,
    VariableType,
    connect_async,
    local_first_async,
)


@pytest.fixture
async def bridge(frontend) -> AsyncIterator[AsyncBridgeClient]:
    async with connect_async(frontend.target) as client:
        yield client


async def populate(ctx: AsyncLocalFirstContext) -> None:
    await ctx.register_variable(
        "temperature", VariableType.FLOAT, 0.7, constraints={"min": 0, "max": 2}, metadata={"source": "test"}
    )
    await ctx.register_variable("tokens", VariableType.INTEGER, 256)
    await ctx.set("temperature", 0.9)
    await ctx.update("tokens", lambda n: n * 2)


async def test_the_move_keeps_ids_versions_and_values(bridge, session_id: str) -> None:
    async with AsyncLocalFirstContext(session_id, bridge=bridge) as ctx:
        await populate(ctx)
        before = await ctx.list_variables()
        revision = ctx.revision
        await ctx.ensure_bridged()
        await ctx.ensure_bridged()
        assert (ctx.backend.kind, ctx.backend.switches) == ("bridged", 1)
        after = await ctx.list_variables()
        assert [(v["id"], v["version"], v["value"]) for v in after] == [
            (v["id"], v["version"], v["value"]) for v in before
        ]
        assert ctx.revision == revision + 1
        assert after[0]["metadata"]["migrated_from"] == "local"
        assert await ctx.update_variable("tokens", 1) == 2
        with pytest.raises(ValidationError, match="above maximum"):
            await ctx.set("temperature", 3)
        other = await bridge.session(session_id)
        assert await other.get_variable("tokens") == 1
        await other.close()


async def test_a_failed_move_keeps_everything_local(frontend, session_id: str) -> None:
    async with (
        connect_async(f"127.0.0.1:{free_port()}", timeout=0.5) as nowhere,
        AsyncLocalFirstContext(session_id, bridge=nowhere) as ctx,
    ):
        await populate(ctx)
        before, revision = await ctx.list_variables(), ctx.revision
        with pytest.raises(BridgeUnavailableError):
            await ctx.ensure_bridged()
        assert (ctx.backend.kind, ctx.backend.failed_switches) == ("local", 1)
        assert isinstance(ctx.backend.last_error, BridgeUnavailableError)
        assert await ctx.list_variables() == before
        assert ctx.revision == revision
        async with connect_async(frontend.target) as bridge:
            await ctx.ensure_bridged(bridge=bridge)
            assert await ctx.get_variable("tokens") == 512


async def test_session_already_on_the_bridge(bridge, session_id: str) -> None:
    other = await bridge.session(session_id)
    await other.set("theirs", 1)
    await other.close()
    async with AsyncLocalFirstContext(session_id, bridge=bridge) as ctx:
        await populate(ctx)
        with pytest.raises(AlreadyExistsError):
            await ctx.register_program("worker", {"requires_python": True})
        assert not ctx.is_bridged
        assert "worker" not in ctx.programs
        assert await ctx.get_variable("tokens") == 512


async def test_tasks_updating_across_a_move(bridge, session_id: str) -> None:
    async with local_first_async(session_id, bridge=bridge) as ctx:
        await ctx.register_variable("counter", VariableType.INTEGER, 0)

        async def work() -> None:
            for _ in range(150):
                await ctx.update("counter", lambda n: n + 1)
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(work()) for _ in range(4)]
        await asyncio.sleep(0)
        await ctx.ensure_bridged()
        await asyncio.gather(*tasks)
        assert await ctx.get_variable("counter") == 600
        assert ctx.is_bridged


async def test_watch_goes_on_across_the_move(bridge, session_id: str) -> None:
    async with AsyncLocalFirstContext(session_id, bridge=bridge) as ctx:
        await ctx.set("a", 0)
        events = ctx.watch(from_revision=0)
        await ctx.set("a", 1)
        await ctx.ensure_bridged()
        await ctx.set("a", 2)
        seen = [await anext(events) for _ in range(4)]
        await events.aclose()  # type: ignore[attr-defined]
        assert [(e.kind, e.revision) for e in seen] == [
            ("registered", 1),
            ("updated", 2),
            ("imported", 3),
            ("updated", 4),
        ]


async def test_start_bridged(bridge, session_id: str) -> None:
    async with AsyncLocalFirstContext(session_id, bridge=bridge, start_bridged=True) as ctx:
        assert ctx.is_bridged
        assert ctx.backend.switches == 0
        await ctx.set("x", 1)
        assert session_id in await bridge.list_sessions()
