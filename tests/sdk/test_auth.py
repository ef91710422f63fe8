"""The SDK sends its token on every call, the watch stream included."""

from __future__ import annotations

import pytest

from unified_bridge import AuthenticationError, VariableType, connect, connect_async


@pytest.fixture
def guarded(frontend_factory):
    return frontend_factory(auth_tokens="s3cret")


def test_sync_client_with_the_token_works_and_caches(guarded, session_id):
    with connect(guarded.target, token="s3cret") as client, client.session(session_id) as ctx:
        ctx.register_variable("x", VariableType.INTEGER, 1)
        ctx["x"] = 2
        assert ctx.wait_for_cache()  # the watch stream is authenticated too
        assert ctx["x"] == 2
        assert ctx["x"] == 2
        assert ctx.cache_stats()["hits"] >= 1


def test_sync_client_without_the_token_gets_an_authentication_error(guarded, session_id):
    with (
        connect(guarded.target, token="wrong", timeout=5) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.session(session_id)
    assert "missing or invalid token" in str(info.value)


async def test_async_client_with_the_token_works(guarded, session_id):
    async with connect_async(guarded.target, token="s3cret") as client:
        ctx = await client.session(session_id)
        async with ctx:
            await ctx.register_variable("x", VariableType.INTEGER, 1)
            assert await ctx.get_variable("x") == 1


async def test_async_client_without_a_token_gets_an_authentication_error(guarded, session_id):
    async with connect_async(guarded.target, timeout=5) as client:
        with pytest.raises(AuthenticationError):
            await client.session(session_id)
