"""The Redis client a frontend talks to: a real Redis from a URL, or the embedded in-process store."""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bridge_server.config import Settings, redacted_url

__all__ = ["connect_storage", "describe_storage"]

log = logging.getLogger(__name__)


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
    # A blocking pool: past max_connections commands wait (up to the Redis timeout) for a connection
    # instead of failing with "Too many connections".
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections


def describe_storage(settings: Settings) -> str:
    return "embedded in-process store" if settings.uses_embedded_store else redacted_url(settings.redis_url)
