"""Fixtures every test layer shares: a real Redis, real frontends, fresh session ids."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from hypothesis import settings

from bridge_server.config import Settings
from bridge_server.testing import FrontendProcess, RedisServer
from tests.harness.frontends import InProcessFrontend
from tests.harness.redis_cluster import cluster_tools_available, private_redis_cluster
from tests.harness.redis_servers import test_redis
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

# No wall-clock limit on a property-based example: on a shared 2-core machine a slow example is
# noise, not a failure (the default profile fails any example slower than 200 ms).
settings.register_profile("bridge", deadline=None)
settings.load_profile("bridge")

# tests/plugin/ runs users' suites through `pytester`; pytest takes pytest_plugins only from here.
pytest_plugins = ["pytester"]

_REAL_REDIS = True
_session_counter = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Decided before collection ends only when the fallback is known; see the `redis_url` fixture.
    del config, items


@pytest.fixture(scope="session")
def _redis() -> Iterator[tuple[str, bool]]:
    with test_redis() as found:
        yield found


@pytest.fixture(scope="session")
def redis_url(_redis: tuple[str, bool]) -> str:
    """URL of the Redis the test session shares (a private real redis-server here and in CI)."""
    return _redis[0]


@pytest.fixture(autouse=True)
def _skip_without_real_redis(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("real_redis") is None:
        return
    _url, is_real = request.getfixturevalue("_redis")
    if not is_real:
        pytest.skip("needs a real Redis server; only fakeredis's TCP server is available on this machine")


def test_settings(redis_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "redis_url": redis_url,
        "shutdown_grace_seconds": 1.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def frontend(redis_url: str) -> Iterator[InProcessFrontend]:
    """An in-process frontend over the shared Redis, for the whole test session."""
    server = InProcessFrontend(test_settings(redis_url))
    yield server
    server.stop()


@pytest.fixture
def frontend_factory(redis_url: str) -> Iterator[Callable[..., InProcessFrontend]]:
    """Start more in-process frontends (same Redis unless `redis_url=` says otherwise)."""
    started: list[InProcessFrontend] = []

    def start(**overrides: Any) -> InProcessFrontend:
        url = overrides.pop("redis_url", redis_url)
        server = InProcessFrontend(test_settings(url, **overrides))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def frontend_process_factory(redis_url: str) -> Iterator[Callable[..., FrontendProcess]]:
    """Start frontends as separate OS processes (`python -m bridge_server`)."""
    started: list[FrontendProcess] = []

    def start(*extra_args: str, redis_url_override: str | None = None) -> FrontendProcess:
        process = FrontendProcess(redis_url_override or redis_url, *extra_args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def redis_process_factory(tmp_path: Any) -> Iterator[Callable[..., RedisServer]]:
    """Private redis-servers a test may stop and restart (for outage tests)."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary to start and stop a private Redis")
    started: list[RedisServer] = []

    def start(*extra_args: str) -> RedisServer:
        directory = tmp_path / f"redis-{len(started)}"
        directory.mkdir()
        server = RedisServer(directory, *extra_args).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A private three-node Redis Cluster (started on first use, shared by the test session)."""
    if not cluster_tools_available():
        pytest.skip("needs redis-server and redis-cli to start a private Redis Cluster")
    with private_redis_cluster() as url:
        yield url


@pytest.fixture
def session_id(request: pytest.FixtureRequest) -> str:
    """A fresh session id, unique across the test run and across runs sharing one Redis."""
    name = "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    return f"t{os.getpid()}_{next(_session_counter)}_{name}"


@pytest.fixture
def channel(frontend: InProcessFrontend) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(frontend.target) as chan:
        yield chan


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.UnifiedBridgeStub:
    return pb_grpc.UnifiedBridgeStub(channel)
