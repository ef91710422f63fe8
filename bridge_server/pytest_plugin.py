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
bridge_frontend        session   a ``python -m bridge_server`` process on it, or the frontends
                                 ``--bridge-target`` names; ``.target`` to connect
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

``--bridge-target HOST:PORT[,HOST:PORT]`` (or ``BRIDGE_TEST_TARGET``) runs the fixtures against
frontends already running, a deployment under test: nothing is started, the SDK alone is enough,
and ``bridge_client``, ``bridge_async_client`` and ``bridge_session`` connect with
``--bridge-token`` (``BRIDGE_TEST_TOKEN``) and ``--bridge-tls-ca FILE`` (``BRIDGE_TEST_TLS_CA``)
when given. The Redis behind them is not known then: ``bridge_redis`` needs ``--bridge-redis-url``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import os
import re
import shlex
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from bridge_server.testing import FrontendProcess
    from unified_bridge import AsyncBridgeClient, BridgeClient, SessionContext

__all__ = [
    "REDIS_URL_VARIABLE",
    "TARGET_VARIABLE",
    "TLS_CA_VARIABLE",
    "TOKEN_VARIABLE",
    "RunningFrontend",
    "bridge_client",
    "bridge_frontend",
    "bridge_redis",
    "bridge_session",
    "redis_for_tests",
]

REDIS_URL_VARIABLE = "BRIDGE_TEST_REDIS_URL"
TARGET_VARIABLE = "BRIDGE_TEST_TARGET"
TOKEN_VARIABLE = "BRIDGE_TEST_TOKEN"
TLS_CA_VARIABLE = "BRIDGE_TEST_TLS_CA"

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
        "--bridge-target",
        metavar="HOST:PORT",
        default=None,
        help=f"run the bridge_* fixtures against these running frontends (comma-separated) instead "
        f"of starting one (default: ${TARGET_VARIABLE})",
    )
    group.addoption(
        "--bridge-token",
        metavar="TOKEN",
        default=None,
        help=f"the bearer token of the bridge_* clients (default: ${TOKEN_VARIABLE})",
    )
    group.addoption(
        "--bridge-tls-ca",
        metavar="FILE",
        default=None,
        help=f"connect the bridge_* clients over TLS, trusting this CA (default: ${TLS_CA_VARIABLE})",
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


@dataclasses.dataclass(frozen=True)
class RunningFrontend:
    """Frontends the fixtures did not start (``--bridge-target``)."""

    target: str


def _option(config: pytest.Config, name: str, variable: str) -> str | None:
    value: str | None = config.getoption(name) or os.environ.get(variable) or None
    return value


def _connect_options(config: pytest.Config) -> dict[str, Any]:
    """How the bridge_* clients connect: the token and the CA given, if any."""
    options: dict[str, Any] = {}
    token = _option(config, "bridge_token", TOKEN_VARIABLE)
    if token:
        options["token"] = token
    ca_file = _option(config, "bridge_tls_ca", TLS_CA_VARIABLE)
    if ca_file:
        try:
            options["root_certificates"] = Path(ca_file).read_bytes()
        except OSError as exc:
            pytest.fail(f"--bridge-tls-ca {ca_file!r} cannot be read: {exc.strerror or exc}", pytrace=False)
    return options


@pytest.fixture(scope="session")
def bridge_redis(pytestconfig: pytest.Config) -> Iterator[str]:
    """The URL of the Redis under the bridge_* fixtures' frontend."""
    given = _option(pytestconfig, "bridge_redis_url", REDIS_URL_VARIABLE)
    if not given and _option(pytestconfig, "bridge_target", TARGET_VARIABLE):
        pytest.fail(
            "with --bridge-target the Redis behind those frontends is not known: "
            "pass --bridge-redis-url too for tests that use bridge_redis",
            pytrace=False,
        )
    with redis_for_tests(given) as url:
        yield url


@pytest.fixture(scope="session")
def bridge_frontend(
    request: pytest.FixtureRequest, pytestconfig: pytest.Config
) -> Iterator[FrontendProcess | RunningFrontend]:
    """A frontend process on `bridge_redis` for the whole test session, or the frontends
    ``--bridge-target`` names; connect to its ``.target``."""
    flags = shlex.split(pytestconfig.getoption("bridge_frontend_args"))
    target = _option(pytestconfig, "bridge_target", TARGET_VARIABLE)
    if target:
        if flags:
            pytest.fail(
                "--bridge-frontend-args are flags for a frontend the fixtures start; "
                "with --bridge-target none is started",
                pytrace=False,
            )
        yield RunningFrontend(target)
        return
    redis_url = request.getfixturevalue("bridge_redis")
    testing = _server_side()
    with testing.FrontendProcess(redis_url, *flags) as frontend:
        yield frontend


@pytest.fixture
def bridge_client(
    bridge_frontend: FrontendProcess | RunningFrontend, pytestconfig: pytest.Config
) -> Iterator[BridgeClient]:
    """A blocking client of `bridge_frontend`, closed after the test."""
    from unified_bridge import connect

    with connect(bridge_frontend.target, **_connect_options(pytestconfig)) as client:
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
    async def _bridge_async_client(
        bridge_frontend: FrontendProcess | RunningFrontend, pytestconfig: pytest.Config
    ) -> AsyncIterator[AsyncBridgeClient]:
        """An asyncio client of `bridge_frontend`, closed after the test."""
        from unified_bridge import connect_async

        async with connect_async(bridge_frontend.target, **_connect_options(pytestconfig)) as client:
            yield client

else:

    @pytest.fixture(name="bridge_async_client")
    def _bridge_async_client_needs_pytest_asyncio() -> None:
        pytest.fail("bridge_async_client needs pytest-asyncio: pip install pytest-asyncio", pytrace=False)
