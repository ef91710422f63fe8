"""Fixtures of the SDK tests: session contexts on the shared in-process frontend.

``ctx`` and ``actx`` run every test that takes them against each backend (``BACKENDS``): the bridged
context, the local one, a local-first context that stays local, and a local-first context that
moves to the bridge in the middle of the test (after its second successful write). A test of
something only the bridged context has (its near cache) is marked ``bridged_only``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from unified_bridge import (
    AsyncLocalFirstContext,
    AsyncLocalSessionContext,
    AsyncSessionContext,
    LocalFirstContext,
    LocalSessionContext,
    SessionContext,
    connect,
    connect_async,
)
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

BACKENDS = ("bridged", "local", "local_first", "local_then_bridged")

_MUTATORS = frozenset(
    {"register_variable", "update_variable", "update_variables", "update", "delete_variable", "set"}
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name in ("ctx", "actx"):
        if name in metafunc.fixturenames:
            only_bridged = metafunc.definition.get_closest_marker("bridged_only") is not None
            metafunc.parametrize(name, ["bridged"] if only_bridged else list(BACKENDS), indirect=True)


class SwitchesMidway:
    """A local-first context that moves to the bridge after its second successful write: the test
    then goes on, unchanged, across the switch."""

    def __init__(self, inner: Any, after: int = 2) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_writes", 0)
        object.__setattr__(self, "_after", after)

    def _wrote(self) -> None:
        object.__setattr__(self, "_writes", self._writes + 1)
        if self._writes == self._after:
            self._inner.ensure_bridged()
            assert self._inner.is_bridged

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in _MUTATORS:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            self._wrote()
            return result

        return write

    def __getitem__(self, name: str) -> Any:
        return self._inner[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._inner[name] = value
        self._wrote()

    def __delitem__(self, name: str) -> None:
        del self._inner[name]
        self._wrote()

    def __contains__(self, name: object) -> bool:
        return name in self._inner


class AsyncSwitchesMidway(SwitchesMidway):
    """The asyncio twin: the switch is awaited after the second successful write."""

    async def _awrote(self) -> None:
        object.__setattr__(self, "_writes", self._writes + 1)
        if self._writes == self._after:
            await self._inner.ensure_bridged()
            assert self._inner.is_bridged

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in _MUTATORS or not inspect.iscoroutinefunction(attr):
            return attr

        async def write(*args: Any, **kwargs: Any) -> Any:
            result = await attr(*args, **kwargs)
            await self._awrote()
            return result

        return write


@pytest.fixture
def ctx(request: pytest.FixtureRequest, frontend, session_id: str) -> Iterator[Any]:
    """A context of the backend the test is parametrized with; the bridged one is built the way the
    reference tests build it: from a stub and a session id."""
    backend = request.param
    if backend == "local":
        with LocalSessionContext(session_id) as local:
            yield local
        return
    with grpc.insecure_channel(frontend.target) as channel:
        if backend == "bridged":
            with SessionContext(pb_grpc.UnifiedBridgeStub(channel), session_id) as bridged:
                yield bridged
            return
        with connect(frontend.target) as bridge, LocalFirstContext(session_id, bridge=bridge) as first:
            yield first if backend == "local_first" else SwitchesMidway(first)


@pytest.fixture
def client(frontend):
    with connect(frontend.target) as bridge_client:
        yield bridge_client


@pytest.fixture
async def actx(request: pytest.FixtureRequest, frontend, session_id: str) -> AsyncIterator[Any]:
    backend = request.param
    if backend == "local":
        async with AsyncLocalSessionContext(session_id) as local:
            yield local
        return
    async with connect_async(frontend.target) as async_client:
        if backend == "bridged":
            context: AsyncSessionContext = await async_client.session(session_id)
            async with context:
                yield context
            return
        async with AsyncLocalFirstContext(session_id, bridge=async_client) as first:
            yield first if backend == "local_first" else AsyncSwitchesMidway(first)
