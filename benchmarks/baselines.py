"""Floors measured in the same run: raw Redis (storage) and bare gRPC (transport).

etcd, the system users would pick instead, lives in `benchmarks.etcd`.
"""

from __future__ import annotations

import struct
import time

import grpc
import redis

from benchmarks._echo_server import PUSH_METHOD, UNARY_METHOD, identity
from benchmarks._stats import time_calls

__all__ = ["grpc_push", "grpc_unary_echo", "redis_evalsha", "redis_hget"]

# Comparable work to one update script: read the state, write it, bump the revision, publish.
_FOUR_CALLS = """
local old = redis.call('HGET', KEYS[1], 'v')
redis.call('HSET', KEYS[1], 'v', ARGV[1])
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('PUBLISH', KEYS[2], rev)
return rev
"""

_KEY = "bench:{floor}:hash"
_CHANNEL = "bench:{floor}:events"


def _client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def redis_hget(redis_url: str, n: int) -> list[int]:
    """redis-py (hiredis parser when installed) HGET of a small field: the storage floor of a read."""
    client = _client(redis_url)
    try:
        client.hset(_KEY, "v", b"x" * 16)
        return time_calls(lambda _: client.hget(_KEY, "v"), n, warmup=min(n, 50))
    finally:
        client.delete(_KEY)
        client.close()


def redis_evalsha(redis_url: str, n: int) -> list[int]:
    """EVALSHA of a four-call script (HGET, HSET, HINCRBY, PUBLISH): the storage floor of a write."""
    client = _client(redis_url)
    try:
        sha = client.script_load(_FOUR_CALLS)
        return time_calls(lambda i: client.evalsha(sha, 2, _KEY, _CHANNEL, i), n, warmup=min(n, 50))
    finally:
        client.delete(_KEY)
        client.close()


def grpc_unary_echo(target: str, n: int) -> list[int]:
    """A blocking grpcio unary call to the bare grpc.aio echo server: the transport floor."""
    with grpc.insecure_channel(target) as channel:
        echo = channel.unary_unary(UNARY_METHOD, request_serializer=identity, response_deserializer=identity)
        payload = b"x" * 32
        return time_calls(lambda _: echo(payload), n, warmup=min(n, 50))


def grpc_push(target: str, n: int, gap_us: int = 1000) -> list[int]:
    """One-way latency of a server-streaming push to a waiting client (wall clock, same host)."""
    with grpc.insecure_channel(target) as channel:
        push = channel.unary_stream(PUSH_METHOD, request_serializer=identity, response_deserializer=identity)
        warmup = 20
        samples: list[int] = []
        for index, message in enumerate(push(f"{n + warmup} {gap_us}".encode())):
            received = time.time_ns()
            if index >= warmup:
                samples.append(received - struct.unpack(">q", message)[0])
        return samples
