"""Fixtures of the SDK tests: session contexts on the shared in-process frontend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from unified_bridge import AsyncSessionContext, SessionContext, connect, connect_async
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


@pytest.fixture
def ctx(frontend, session_id: str) -> Iterator[SessionContext]:
    """A context built the way the reference tests build it: from a stub and a session id."""
    with grpc.insecure_channel(frontend.target) as channel:
        context = SessionContext(pb_grpc.UnifiedBridgeStub(channel), session_id)
        with context:
            yield context


@pytest.fixture
def client(frontend):
    with connect(frontend.target) as bridge_client:
        yield bridge_client


@pytest.fixture
async def actx(frontend, session_id: str) -> AsyncIterator[AsyncSessionContext]:
    async with connect_async(frontend.target) as async_client:
        context = await async_client.session(session_id)
        async with context:
            yield context
