"""The Lua scripts of `lua/` (shipped as `bridge_server.lua`), registered once per Redis client.

redis-py's `Script` runs EVALSHA and falls back to loading the script on NOSCRIPT, so a Redis that
restarted or was flushed needs nothing from us.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript

__all__ = ["Scripts", "load_scripts", "preload_scripts"]

_NAMES = (
    "create_session",
    "touch_session",
    "delete_session",
    "register_variable",
    "get_variables",
    "list_variables",
    "set_variables",
    "delete_variable",
    "watch_position",
    "import_stage",
    "import_session",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Scripts:
    create_session: AsyncScript
    touch_session: AsyncScript
    delete_session: AsyncScript
    register_variable: AsyncScript
    get_variables: AsyncScript
    list_variables: AsyncScript
    set_variables: AsyncScript
    delete_variable: AsyncScript
    watch_position: AsyncScript
    import_stage: AsyncScript
    import_session: AsyncScript


def script_source(name: str) -> str:
    return (resources.files("bridge_server.lua") / f"{name}.lua").read_text(encoding="utf-8")


def load_scripts(redis: Any) -> Scripts:
    """Register every script with a `redis.asyncio` client (no round trip until first use)."""
    return Scripts(**{name: redis.register_script(script_source(name)) for name in _NAMES})


async def preload_scripts(redis: Any, scripts: Scripts) -> None:
    """SCRIPT LOAD every script now, so first calls need no NOSCRIPT round trip.

    On a cluster redis-py sends SCRIPT LOAD to every primary. A script Redis cannot compile fails
    here, at start-up, instead of on a user's first call.
    """
    for field in dataclasses.fields(scripts):
        script: AsyncScript = getattr(scripts, field.name)
        await redis.script_load(script.script)
