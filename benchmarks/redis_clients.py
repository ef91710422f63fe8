"""Redis clients for the frontend's hot path, measured in one run: latency and client CPU per command.

    python -m benchmarks.redis_clients [--n 2000] [--rounds 5]

Starts a private redis-server and, in one asyncio process, times sequential commands through:
redis.asyncio (with hiredis, what the frontend uses), coredis and valkey-glide when installed, and a
minimal asyncio protocol client (pre-packed RESP, hiredis parser, no reconnects, no timeouts) as
the floor of any asyncio client. Commands: an HGET (a get's read), and an EVALSHA of the frontend's
real read script (`get_variables.lua`, one ref). Rounds are interleaved, clients shuffled within
each; CPU is this process's (all threads: valkey-glide's core runs in its own) per command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import hiredis
import redis.asyncio

from benchmarks._table import text_table
from bridge_server.keys import session_keys
from bridge_server.scripts import script_source
from bridge_server.testing import private_redis

__all__ = ["main"]

Call = Callable[[], Awaitable[Any]]
KEYS = tuple(session_keys("ub", "bench").stored)  # the layout a frontend uses
VAR_ID = "var_x_00000001"


class MinimalClient(asyncio.Protocol):
    """One connection, one request at a time: the least an asyncio Redis client can do."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiter: asyncio.Future[Any] | None = None
        self._transport: asyncio.Transport | None = None

    @classmethod
    async def connect(cls, host: str, port: int) -> MinimalClient:
        _, protocol = await asyncio.get_running_loop().create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        reply = self._reader.gets()
        if reply is not False and self._waiter is not None:
            self._waiter.set_result(reply)

    async def call(self, packed: bytes) -> Any:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(packed)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _pack(*parts: str | bytes) -> bytes:
    encoded = [part.encode() if isinstance(part, str) else part for part in parts]
    return b"".join([b"*%d\r\n" % len(encoded), *(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)])


async def _clients(host: str, port: int, sha: str) -> tuple[dict[str, dict[str, Call]], list[Any]]:
    eval_args = ("EVALSHA", sha, "4", *KEYS, "0", "0", "x")
    clients: dict[str, dict[str, Call]] = {}
    closers: list[Any] = []

    redis_py = redis.asyncio.Redis(host=host, port=port)
    closers.append(redis_py.aclose)
    clients["redis.asyncio (hiredis)"] = {
        "HGET": lambda: redis_py.hget(KEYS[1], VAR_ID),
        "EVALSHA get_variables": lambda: redis_py.evalsha(sha, 4, *KEYS, 0, 0, "x"),
    }

    minimal = await MinimalClient.connect(host, port)
    closers.append(minimal.close)
    hget, evalsha = _pack("HGET", KEYS[1], VAR_ID), _pack(*eval_args)
    clients["minimal asyncio protocol"] = {
        "HGET": lambda: minimal.call(hget),
        "EVALSHA get_variables": lambda: minimal.call(evalsha),
    }

    with contextlib.suppress(ImportError):
        import coredis

        core = coredis.Redis(host=host, port=port)
        await core.__aenter__()
        closers.append(lambda: core.__aexit__(None, None, None))
        clients["coredis"] = {
            "HGET": lambda: core.hget(KEYS[1], VAR_ID),
            "EVALSHA get_variables": lambda: core.evalsha(sha, keys=KEYS, args=[0, 0, "x"]),
        }

    with contextlib.suppress(ImportError):
        from glide import GlideClient, GlideClientConfiguration, NodeAddress

        glide = await GlideClient.create(GlideClientConfiguration([NodeAddress(host, port)]))
        closers.append(glide.close)
        clients["valkey-glide"] = {
            "HGET": lambda: glide.hget(KEYS[1], VAR_ID),
            "EVALSHA get_variables": lambda: glide.custom_command(list(eval_args)),
        }
    return clients, closers


async def _time(call: Call, n: int) -> tuple[float, float]:
    """(p50 latency in microseconds, process CPU per call in microseconds)."""
    for _ in range(min(n, 200)):
        await call()
    samples = []
    cpu = time.process_time()
    for _ in range(n):
        start = time.perf_counter_ns()
        await call()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000, (time.process_time() - cpu) / n * 1e6


async def measure(url: str, n: int, rounds: int) -> dict[tuple[str, str], list[tuple[float, float]]]:
    host, port = url.split("//")[1].split("/")[0].split(":")
    setup = redis.asyncio.Redis.from_url(url)
    sha = await setup.script_load(script_source("get_variables"))
    await setup.hset(KEYS[0], mapping={"ttl": 3600, "revision": 1})
    await setup.hset(KEYS[2], "x", VAR_ID[-8:])  # the names hash holds an id's last 8 digits
    await setup.hset(KEYS[1], VAR_ID, b"0 1 integer 14\n" + b"d" * 14 + b"\x01")  # a record
    found = await setup.evalsha(sha, 4, *KEYS, 0, 0, "x")
    await setup.aclose()
    if not found[2][0]:
        raise RuntimeError("the script did not find the benchmark's variable: its layout is out of date")
    clients, closers = await _clients(host, int(port), sha)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    rng = random.Random(11)
    try:
        for _ in range(rounds):
            order = [(client, command) for client, calls in clients.items() for command in calls]
            rng.shuffle(order)
            for client, command in order:
                results.setdefault((client, command), []).append(await _time(clients[client][command], n))
    finally:
        for close in closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        cleanup = redis.asyncio.Redis.from_url(url)
        await cleanup.delete(*KEYS)
        await cleanup.aclose()
    return results


def render(results: dict[tuple[str, str], list[tuple[float, float]]], rounds: int, n: int) -> str:
    floor = {
        command: statistics.median(cpu for _, cpu in results[("minimal asyncio protocol", command)])
        for _, command in results
    }
    rows = []
    for (client, command), samples in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        p50 = statistics.median(latency for latency, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        rows.append([command, client, f"{p50:.1f}", f"{cpu:.1f}", f"{cpu / floor[command]:.2f}x"])
    table = text_table(["command", "client", "p50 us", "client CPU us/cmd", "CPU vs minimal"], rows)
    return f"{table}\n(medians over {rounds} interleaved rounds of {n} sequential calls, one process)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_clients", description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with private_redis() as server:
        results = asyncio.run(measure(server.url, args.n, args.rounds))
    print(render(results, args.rounds, args.n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
