"""pytest fixtures for testing a program against the bridge: a Redis, a frontend, clients, sessions.

pytest loads this module wherever the package is installed (a ``pytest11`` entry point), so a suite
only asks for the fixtures::

    def test_the_tuner_publishes_its_best_temperature(bridge_session):
        run_tuner(bridge_session)
        assert bridge_session["temperature"] == 0.7

=====================  ========  ==============================================================
fixture                scope     what it is
=====================  ========  ==============================================================
bridge_redis           session   the URL of a Redis (chosen as below)
bridge_frontend        session   a ``python -m bridge_server`` process on it; ``.target`` to connect
bridge_client          function  ``unified_bridge.connect(bridge_frontend.target)``, closed after
bridge_async_client    function  ``connect_async(...)``, closed after (needs pytest-asyncio)
bridge_session         function  a ``SessionContext`` on a fresh session id, uncached, deleted after
=====================  ========  ==============================================================

The Redis, in this order: ``--bridge-redis-url`` or ``BRIDGE_TEST_REDIS_URL`` (a server you run;
every session id is unique, so runs may share it); a container when a Docker engine answers and
``testcontainers`` is installed; a private ``redis-server`` from PATH on a free port. With none of
these, each test that uses the fixtures errors saying what to install: a skip would let a suite
pass without having tested anything. ``--bridge-frontend-args`` passes flags to the frontend.

Starting a frontend needs the ``[server]`` extra. In an environment with the SDK alone this module
still imports (pytest loads it everywhere), and the fixtures error saying what to install.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import shlex
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bridge_server.testing import FrontendProcess
    from unified_bridge import AsyncBridgeClient, BridgeClient, SessionContext

__all__ = [
    "REDIS_URL_VARIABLE",
    "bridge_client",
    "bridge_frontend",
    "bridge_redis",
    "bridge_session",
    "redis_for_tests",
]

REDIS_URL_VARIABLE = "BRIDGE_TEST_REDIS_URL"

# What `python -m bridge_server` imports beyond the SDK: the `server` extra.
_SERVER_MODULES = ("redis", "fakeredis", "prometheus_client", "grpc_health", "grpc_reflection")
_NOT_IN_SESSION_IDS = re.compile(r"[^A-Za-z0-9_.-]")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("unified_bridge", "Unified Bridge fixtures (bridge_*)")
    group.addoption(
        "--bridge-redis-url",
        metavar="URL",
        default=None,
        help=f"the Redis of the bridge_* fixtures' frontend (default: ${REDIS_URL_VARIABLE}, "
        "else a container if Docker answers, else a private redis-server)",
    )
    group.addoption(
        "--bridge-frontend-args",
        metavar="ARGS",
        default="",
        help="more flags for the frontend the bridge_* fixtures start, e.g. '--max-variables-per-session 50'",
    )


def _server_side() -> ModuleType:
    """`bridge_server.testing`, or a clear failure when the `server` extra is not installed."""
    missing = []
    for name in _SERVER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        pytest.fail(
            "the bridge_* fixtures start a frontend, which needs the server extra "
            f"(missing: {', '.join(missing)}): pip install 'unified-bridge[server]'",
            pytrace=False,
        )
    return importlib.import_module("bridge_server.testing")


def _testcontainers_installed() -> bool:
    return importlib.util.find_spec("testcontainers") is not None


@contextlib.contextmanager
def redis_for_tests(given_url: str | None) -> Iterator[str]:
    """The URL of the Redis the fixtures use, chosen in the order the module docstring gives."""
    if given_url:
        yield given_url
        return
    testing = _server_side()
    if testing.docker_answers() and _testcontainers_installed():
        with testing.container_redis() as url:
            yield url
    elif shutil.which("redis-server"):
        with testing.private_redis() as server:
            yield server.url
    else:
        pytest.fail(
            "the bridge_* fixtures need a Redis: pass --bridge-redis-url (or set "
            f"{REDIS_URL_VARIABLE}), or install redis-server on PATH, or run a Docker engine "
            "with testcontainers installed (pip install testcontainers)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def bridge_redis(pytestconfig: pytest.Config) -> Iterator[str]:
    """The URL of the Redis under the bridge_* fixtures' frontend."""
    given = pytestconfig.getoption("bridge_redis_url") or os.environ.get(REDIS_URL_VARIABLE)
    with redis_for_tests(given) as url:
        yield url


@pytest.fixture(scope="session")
def bridge_frontend(bridge_redis: str, pytestconfig: pytest.Config) -> Iterator[FrontendProcess]:
    """A frontend process on `bridge_redis` for the whole test session; connect to its ``.target``."""
    testing = _server_side()
    flags = shlex.split(pytestconfig.getoption("bridge_frontend_args"))
    with testing.FrontendProcess(bridge_redis, *flags) as frontend:
        yield frontend


@pytest.fixture
def bridge_client(bridge_frontend: FrontendProcess) -> Iterator[BridgeClient]:
    """A blocking client of `bridge_frontend`, closed after the test."""
    from unified_bridge import connect

    with connect(bridge_frontend.target) as client:
        yield client


@pytest.fixture
def bridge_session(bridge_client: BridgeClient, request: pytest.FixtureRequest) -> Iterator[SessionContext]:
    """A session of the test's own (a fresh id naming the test), deleted with its variables after.

    Its reads go to the bridge (no near cache): an assertion sees what another process just wrote,
    not a cached value whose invalidation is still on its way.
    """
    name = _NOT_IN_SESSION_IDS.sub("_", request.node.name)[:60]
    session = bridge_client.session(f"pytest-{uuid.uuid4().hex[:12]}-{name}", cache=False)
    yield session
    session.close()
    bridge_client.delete_session(session.session_id)


if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture(name="bridge_async_client")
    async def _bridge_async_client(bridge_frontend: FrontendProcess) -> AsyncIterator[AsyncBridgeClient]:
        """An asyncio client of `bridge_frontend`, closed after the test."""
        from unified_bridge import connect_async

        async with connect_async(bridge_frontend.target) as client:
            yield client

else:

    @pytest.fixture(name="bridge_async_client")
    def _bridge_async_client_needs_pytest_asyncio() -> None:
        pytest.fail("bridge_async_client needs pytest-asyncio: pip install pytest-asyncio", pytrace=False)
