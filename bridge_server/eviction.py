"""Whether the Redis behind a frontend may evict keys, which would take sessions apart.

Every key of a session carries the session's TTL, so any eviction policy other than ``noeviction``
may drop some of a session's keys and keep others (variables without definitions, a log without
its session): half a session is worse than none. With ``maxmemory`` set and such a policy a
frontend refuses to serve (readiness NOT_SERVING, every call UNAVAILABLE, one log line saying why).
A full Redis under ``noeviction`` refuses writes instead (RESOURCE_EXHAUSTED), which loses nothing.
A Redis that does not allow CONFIG GET (some managed services) cannot be checked: one warning.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import exceptions as redis_errors

__all__ = ["eviction_risk"]

log = logging.getLogger(__name__)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def eviction_risk(redis: Any) -> str | None:
    """Why serving would be unsafe (a sentence), or None. Redis being unreachable raises."""
    try:
        settings = await redis.config_get("maxmemory*")
    except redis_errors.ResponseError:
        return None  # CONFIG is not allowed (or the embedded store): nothing to check
    values = {_text(key): _text(value) for key, value in dict(settings).items()}
    policy = values.get("maxmemory-policy", "noeviction")
    if int(values.get("maxmemory", "0") or 0) == 0 or policy == "noeviction":
        return None
    return (
        f"Redis may evict keys (maxmemory-policy {policy}), which would take sessions apart; "
        "refusing to serve: set maxmemory-policy noeviction (deploy/redis.conf does)"
    )
