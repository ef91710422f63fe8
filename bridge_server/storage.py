"""The Redis client a frontend talks to: a real Redis from a URL, or the embedded in-process store."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge_server.config import Settings, redacted_url

__all__ = ["connect_storage", "describe_storage"]

log = logging.getLogger(__name__)


class WaitingConnectionPool(aioredis.ConnectionPool):
    """Past ``max_connections`` a command waits for a connection (up to ``wait_timeout``) instead of
    failing with "Too many connections"; while there is room it costs what the plain pool costs.

    redis-py's BlockingConnectionPool waits too, but measured 10-25 us more per command here (it
    takes a condition and a timeout on every command, room or not).
    """

    def __init__(self, *, wait_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
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
    assert settings.redis_url is not None
    if settings.redis_cluster:
        return RedisCluster.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
    pool = WaitingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        wait_timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections


def describe_storage(settings: Settings) -> str:
    return "embedded in-process store" if settings.uses_embedded_store else redacted_url(settings.redis_url)
