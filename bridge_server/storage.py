"""The Redis client a frontend talks to: a real Redis from a URL, or the embedded in-process store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedSSLConnection
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge_server.config import Settings, redacted_url, sentinel_addresses

__all__ = ["ReplicatedWritesRedis", "connect_storage", "describe_storage"]

log = logging.getLogger(__name__)


class WaitingConnectionPool(aioredis.ConnectionPool):
    """Past ``max_connections`` a command waits for a connection (up to ``wait_timeout``) instead of
    failing with "Too many connections"; while there is room it costs what the plain pool costs.

    redis-py's BlockingConnectionPool waits too, but measured 10-25 us more per command here (it
    takes a condition and a timeout on every command, room or not).
    """

    def __init__(self, *args: Any, wait_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wait_timeout = wait_timeout
        self._released: asyncio.Condition | None = None  # made on first need, in the running loop

    def _has_room(self) -> bool:
        return bool(self._available_connections) or len(self._in_use_connections) < self.max_connections

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except MaxConnectionsError:
            pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_timeout
        if self._released is None:
            self._released = asyncio.Condition()
        while True:
            async with self._released:
                if not self._has_room():  # checked and waited for without a gap: no wakeup is missed
                    remaining = deadline - loop.time()
                    try:
                        await asyncio.wait_for(self._released.wait(), max(remaining, 0))
                    except TimeoutError:
                        raise RedisTimeoutError(
                            f"no connection to Redis came free within {self._wait_timeout} s "
                            f"({self.max_connections} in use)"
                        ) from None
            try:
                return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
            except MaxConnectionsError:
                continue

    async def release(self, connection: Any) -> None:
        await super().release(connection)
        if self._released is not None:
            async with self._released:
                self._released.notify()


class SentinelWaitingConnectionPool(WaitingConnectionPool, SentinelConnectionPool):
    """The waiting pool whose connections go to the master Sentinel names (asked on every connect)."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # the client closes (a new master only drops idle connections)
            await self.sentinel_manager.aclose()


class ReplicatedWritesRedis(aioredis.Redis):
    """A client whose write scripts return only once ``replicas`` replicas have their effects.

    WAIT counts what the replicas acknowledged of the last write *of its connection*, so it follows
    the script on the connection that ran it, before the connection goes back to the pool. The store
    names its write scripts, each with how its reply tells that it wrote (`wait_after_scripts`);
    reads never wait, and neither does a write the script refused (a version conflict is reported
    as one, not as a replication timeout). Fewer replicas in time: the call fails with a timeout
    (UNAVAILABLE, outcome unknown): the master has the write, a failover now may lose it.
    """

    replicas = 0
    timeout_ms = 0
    _write_shas: dict[str, Callable[[Any], bool]] = {}  # replaced by wait_after_scripts, never mutated

    def wait_after_scripts(self, scripts: Iterable[tuple[str, Callable[[Any], bool]]]) -> None:
        """(SHA-1, whether a reply says it wrote) of each script whose writes replicas must have."""
        self._write_shas = dict(scripts)

    async def _send_command_parse_response(
        self, conn: Any, command_name: Any, *args: Any, **options: Any
    ) -> Any:
        reply = await super()._send_command_parse_response(conn, command_name, *args, **options)  # type: ignore[no-untyped-call]
        wrote = self._write_shas.get(args[1]) if command_name == "EVALSHA" else None
        if wrote is not None and wrote(reply):
            await conn.send_command("WAIT", self.replicas, self.timeout_ms)
            acknowledged = int(await conn.read_response())
            if acknowledged < self.replicas:
                raise RedisTimeoutError(
                    f"the write reached {acknowledged} of {self.replicas} replicas within "
                    f"{self.timeout_ms} ms: the master has it, a failover now may lose it"
                )
        return reply


def connect_storage(settings: Settings) -> Any:
    """A `redis.asyncio` client (no I/O happens until it is used).

    The client never retries a command by itself: a script whose reply was lost may well have run,
    and running it again could apply a write twice. Callers see UNAVAILABLE and decide.
    """
    if settings.uses_embedded_store:
        import fakeredis

        log.warning(
            "no Redis URL given: running on the embedded in-process store; data lives only as long "
            "as this process and is not shared with other frontends (pass --redis-url for Redis)"
        )
        return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(version=(7, 0)), version=(7, 0))
    if settings.redis_cluster:
        assert settings.redis_url is not None
        return RedisCluster.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
    pool_settings: dict[str, Any] = {
        "max_connections": settings.redis_max_connections,
        "wait_timeout": settings.redis_timeout_seconds,
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 30,
    }
    client_class = ReplicatedWritesRedis if settings.redis_wait_replicas else aioredis.Redis
    if settings.redis_sentinels:
        client = _sentinel_master(settings, client_class, pool_settings)
    else:
        assert settings.redis_url is not None
        pool = WaitingConnectionPool.from_url(settings.redis_url, **pool_settings)
        client = client_class.from_pool(pool)  # the client owns the pool: closing it closes the connections
    if isinstance(client, ReplicatedWritesRedis):
        client.replicas, client.timeout_ms = settings.redis_wait_replicas, settings.redis_wait_timeout_ms
    return client


def _sentinel_master(
    settings: Settings, client_class: type[aioredis.Redis], pool_settings: dict[str, Any]
) -> Any:
    """A client of the master the Sentinels name, through the same waiting pool, on every connection.

    Sentinel is asked for the master's address whenever a connection (pub/sub's too) connects, so
    after a failover reconnecting is enough; a connection to a master demoted to a replica fails its
    next write (READONLY) and is dropped.
    """
    master_settings = dict(pool_settings)
    if settings.redis_url:  # its user, password, database and TLS; not its host and port
        url_settings: dict[str, Any] = dict(parse_url(settings.redis_url))
        for address in ("host", "port", "path", "connection_class"):
            url_settings.pop(address, None)
        master_settings.update(url_settings)
        if settings.redis_url.startswith("rediss://"):
            master_settings["connection_class"] = SentinelManagedSSLConnection
    sentinel_settings: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
    }
    if settings.redis_sentinel_password:
        sentinel_settings["password"] = settings.redis_sentinel_password
    sentinel = Sentinel(sentinel_addresses(settings.redis_sentinels), sentinel_kwargs=sentinel_settings)
    return sentinel.master_for(
        settings.redis_sentinel_master,
        redis_class=client_class,
        connection_pool_class=SentinelWaitingConnectionPool,
        **master_settings,
    )


def describe_storage(settings: Settings) -> str:
    if settings.redis_sentinels:
        return f"the master {settings.redis_sentinel_master!r} of the Sentinels at {settings.redis_sentinels}"
    return "embedded in-process store" if settings.uses_embedded_store else redacted_url(settings.redis_url)
