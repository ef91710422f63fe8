"""Which Redis the bridge_* fixtures use: a given URL, else a container, else a private redis-server."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest
import redis

import bridge_server.testing
from bridge_server import pytest_plugin
from bridge_server.pytest_plugin import redis_for_tests

CONTAINER_URL = "redis://172.17.0.2:32768/0"


class FakeContainers:
    """Stands in for testcontainers: records whether a container was started and removed."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @contextlib.contextmanager
    def container_redis(self) -> Iterator[str]:
        self.events.append("started")
        yield CONTAINER_URL
        self.events.append("removed")


@pytest.fixture
def containers(monkeypatch) -> FakeContainers:
    fake = FakeContainers()
    monkeypatch.setattr(bridge_server.testing, "container_redis", fake.container_redis)
    return fake


def _docker(monkeypatch, answers: bool) -> None:
    monkeypatch.setattr(bridge_server.testing, "docker_answers", lambda: answers)


def test_a_given_url_is_used_as_it_is(monkeypatch, containers):
    _docker(monkeypatch, True)
    with redis_for_tests("redis://redis.example:6379/3") as url:
        assert url == "redis://redis.example:6379/3"
    assert containers.events == []


def test_where_docker_answers_redis_runs_in_a_container(monkeypatch, containers):
    _docker(monkeypatch, True)
    with redis_for_tests(None) as url:
        assert url == CONTAINER_URL
        assert containers.events == ["started"]
    assert containers.events == ["started", "removed"]


def _answers(url: str) -> bool:
    with redis.Redis.from_url(url, socket_timeout=2) as client:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


@pytest.mark.parametrize(
    ("docker", "testcontainers"), [(False, True), (True, False)], ids=["no-docker", "no-testcontainers"]
)
def test_otherwise_a_private_redis_server_runs_while_it_is_needed(
    monkeypatch, containers, docker, testcontainers
):
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary: the fallback it tests starts one")
    _docker(monkeypatch, docker)
    monkeypatch.setattr(pytest_plugin, "_testcontainers_installed", lambda: testcontainers)
    with redis_for_tests(None) as url:
        assert url.startswith("redis://127.0.0.1:")
        assert _answers(url)
    assert not _answers(url)
    assert containers.events == []


def test_with_no_redis_at_all_the_failure_says_what_to_install(monkeypatch, containers):
    _docker(monkeypatch, False)
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    with (
        pytest.raises(pytest.fail.Exception, match=r"--bridge-redis-url .* install redis-server"),
        redis_for_tests(None),
    ):
        pass
    assert containers.events == []
