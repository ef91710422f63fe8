"""Workload 7: footprint -- Redis memory per variable, frontend RSS per open watch stream."""

from __future__ import annotations

import time
from typing import Any

import grpc
import redis

from benchmarks._env import Env
from benchmarks._infra import rss_kib
from benchmarks._raw import RawClient, new_session_id
from bridge_server.config import Settings
from bridge_server.keys import session_keys
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

__all__ = ["run"]

_STREAMS_PER_CHANNEL = 50


#: The target of a small variable's Redis memory (its record and its name), in sessions this large.
SMALL_VARIABLE_TARGET_BYTES = 200


def run(env: Env) -> dict[str, Any]:
    # From 1,000 variables up: below 128 a session's hashes are listpacks, smaller than any real size.
    small_counts = [1000] if env.quick else [1000, 10_000]
    result: dict[str, Any] = {
        "redis_bytes_per_variable": {
            "small_int": {
                str(count): _bytes_per_variable(env, count, lambda c, name: c.register(name, 7))
                for count in small_counts
            },
            "string_1KiB": _bytes_per_variable(
                env, env.scale(100, 1000), lambda c, name: c.register_string(name, "x" * 1024)
            ),
        },
        "small_variable_target_bytes": SMALL_VARIABLE_TARGET_BYTES,
    }
    if env.frontend_pids:
        result["rss_per_watch_stream_kib"] = _rss_per_stream(env, env.scale(50, 200))
    else:
        result["rss_per_watch_stream_kib"] = None  # frontends given with --target: no pid to read
    return result


def _session_bytes(client: redis.Redis, session_id: str) -> dict[str, int]:
    """MEMORY USAGE of each key of the session (the frontends run with the default key prefix)."""
    keys = session_keys(Settings().key_prefix, session_id)
    named = {"session": keys.session, "vars": keys.vars, "names": keys.names, "log": keys.log}
    return {kind: int(client.memory_usage(key, samples=0) or 0) for kind, key in named.items()}


def _bytes_per_variable(env: Env, count: int, register: Any) -> dict[str, float]:
    """Per variable: the variables' own keys (state and name index), and with the change log."""
    storage = redis.Redis.from_url(env.redis_url)
    client = RawClient(env.frontends[0], new_session_id("mem"))
    try:
        empty = _session_bytes(storage, client.session_id)
        for i in range(count):
            register(client, f"m_{i}")
        full = _session_bytes(storage, client.session_id)
        client.delete_session()
    finally:
        client.close()
        storage.close()
    own = sum(full.get(k, 0) - empty.get(k, 0) for k in full if k != "log")
    total = sum(full.values()) - sum(empty.values())
    return {"variable_keys": own / count, "including_change_log": total / count}


def _rss_per_stream(env: Env, streams: int) -> float:
    pid = env.frontend_pids[0]
    client = RawClient(env.frontends[0], new_session_id("rss"))
    channels = [grpc.insecure_channel(env.frontends[0]) for _ in range(-(-streams // _STREAMS_PER_CHANNEL))]
    calls = []
    try:
        time.sleep(0.5)
        before = rss_kib(pid)
        for i in range(streams):
            stub = pb_grpc.UnifiedBridgeStub(channels[i // _STREAMS_PER_CHANNEL])
            call = stub.WatchSession(pb.WatchSessionRequest(session_id=client.session_id, from_now=True))
            next(iter(call))  # the frontend is following: CAUGHT_UP has arrived
            calls.append(call)
        time.sleep(0.5)
        after = rss_kib(pid)
        return (after - before) / streams
    finally:
        for call in calls:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it untyped
        for channel in channels:
            channel.close()
        client.delete_session()
        client.close()
