"""The failover settings: Sentinel addresses and master name, WAIT for replicas; bad ones fail clearly.

And the Sentinel client they build: the waiting pool, WAIT after write scripts only, pub/sub that
notices a new master."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from redis.asyncio.sentinel import SentinelConnectionPool

from bridge_server.config import Settings, sentinel_addresses
from bridge_server.fanout import _on_a_former_master
from bridge_server.storage import (
    ReplicatedWritesRedis,
    WaitingConnectionPool,
    connect_storage,
    describe_storage,
)
from bridge_server.store import VariableStore

SENTINELS = "127.0.0.1:26379, sentinel-b:26380,[::1]:26381"


def test_sentinel_addresses_are_parsed() -> None:
    assert sentinel_addresses(SENTINELS) == [("127.0.0.1", 26379), ("sentinel-b", 26380), ("::1", 26381)]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"redis_sentinels": SENTINELS}, "go together"),
        ({"redis_sentinel_master": "mymaster"}, "go together"),
        (
            {"redis_sentinels": "host", "redis_sentinel_master": "m"},
            "'host' in redis_sentinels is not host:port",
        ),
        ({"redis_sentinels": "a:1,b:http", "redis_sentinel_master": "m"}, "'b:http'"),
        ({"redis_sentinels": "a:1,:2", "redis_sentinel_master": "m"}, "':2'"),
        ({"redis_sentinels": "a:70000", "redis_sentinel_master": "m"}, "'a:70000'"),
        (
            {"redis_sentinels": "a:1", "redis_sentinel_master": "m", "redis_cluster": True},
            "exclude each other",
        ),
        ({"redis_wait_replicas": 1}, "not the embedded store"),
        (
            {"redis_url": "redis://h:1/0", "redis_cluster": True, "redis_wait_replicas": 1},
            "not the embedded store or a cluster",
        ),
        ({"redis_url": "redis://h:1/0", "redis_wait_replicas": 1, "redis_wait_timeout_ms": 0}, "at least 1"),
        ({"redis_url": "redis://h:1/0", "redis_wait_replicas": -1}, "must not be negative"),
        (
            {"redis_url": "redis://h:1/0", "redis_wait_replicas": 1, "redis_wait_timeout_ms": 5000},
            "must be below redis_timeout_seconds (5.0 s)",
        ),
    ],
)
def test_bad_failover_settings_are_clear_errors(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        Settings(**overrides)  # type: ignore[arg-type]


def test_flags_and_environment_reach_the_settings() -> None:
    settings = Settings.from_args(
        ["--redis-sentinels", SENTINELS, "--redis-sentinel-master", "mymaster", "--redis-wait-replicas", "1"],
        environ={"BRIDGE_REDIS_SENTINEL_PASSWORD": "s3cret", "BRIDGE_REDIS_WAIT_TIMEOUT_MS": "250"},
    )
    assert (settings.redis_sentinel_master, settings.redis_wait_replicas) == ("mymaster", 1)
    assert settings.redis_wait_timeout_ms == 250
    assert not settings.uses_embedded_store  # Sentinels alone name a real Redis
    assert "s3cret" not in repr(settings)
    assert "mymaster" in describe_storage(settings)


async def test_a_sentinel_client_keeps_the_waiting_pool_and_the_url_credentials() -> None:
    settings = Settings(
        redis_sentinels=SENTINELS,
        redis_sentinel_master="mymaster",
        redis_url="redis://user:pw@ignored-host:1/3",
        redis_max_connections=7,
        redis_timeout_seconds=2.5,
        redis_wait_replicas=2,
        redis_wait_timeout_ms=300,
    )
    client = connect_storage(settings)  # no I/O until used
    try:
        pool = client.connection_pool
        assert isinstance(pool, WaitingConnectionPool)
        assert isinstance(pool, SentinelConnectionPool)
        assert pool.service_name == "mymaster"
        assert pool.max_connections == 7
        kwargs = pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("user", "pw", 3)
        assert kwargs["socket_timeout"] == 2.5
        assert "host" not in kwargs  # the address comes from the Sentinels
        assert isinstance(client, ReplicatedWritesRedis)
        assert (client.replicas, client.timeout_ms) == (2, 300)
    finally:
        await client.aclose()


async def test_only_write_scripts_wait_for_replicas() -> None:
    client = connect_storage(Settings(redis_url="redis://127.0.0.1:1/0", redis_wait_replicas=1))
    try:
        store = VariableStore(client, Settings(redis_url="redis://127.0.0.1:1/0", redis_wait_replicas=1))
        scripts = store._scripts
        waiting = client._write_shas
        assert scripts.set_variables.sha in waiting
        assert scripts.delete_session.sha in waiting
        assert scripts.get_variables.sha not in waiting
        assert scripts.list_variables.sha not in waiting
    finally:
        await client.aclose()


def test_without_wait_the_client_is_plain() -> None:
    client = connect_storage(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert not isinstance(client, ReplicatedWritesRedis)


def test_an_event_subscription_left_on_a_former_master_is_noticed() -> None:
    pool = SentinelConnectionPool("mymaster", sentinel_manager=None)
    on_old = SimpleNamespace(is_connected=True, host="10.0.0.1", port=6379)
    assert not _on_a_former_master(pool, on_old)  # no master learned yet
    pool.master_address = ("10.0.0.1", 6379)
    assert not _on_a_former_master(pool, on_old)
    pool.master_address = ("10.0.0.2", 6379)  # a connect learned of a new master
    assert _on_a_former_master(pool, on_old)
    assert not _on_a_former_master(pool, SimpleNamespace(is_connected=False, host="10.0.0.1", port=6379))
    assert not _on_a_former_master(WaitingConnectionPool(wait_timeout=1), on_old)  # not behind Sentinel
