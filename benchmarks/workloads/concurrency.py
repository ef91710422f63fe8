"""Workload 4: concurrency -- 1, 5, 10, 20 workers doing read-modify-write with `update(name, fn)`.

Threads share one SessionContext; asyncio tasks share one AsyncSessionContext. Workers spread over
10 counters (as in the reference); the final sum must equal the number of increments, since
`update` is compare-and-set with retries and must never lose one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks._env import Env
from benchmarks._raw import new_session_id
from benchmarks._stats import summarize

__all__ = ["WORKER_COUNTS", "run"]

WORKER_COUNTS = (1, 5, 10, 20)
_COUNTERS = 10
_ATTEMPTS = 10_000  # contention is the point here: never give up


def _increment(value: int) -> int:
    return value + 1


def run(env: Env) -> dict[str, Any]:
    iterations = env.scale(5, 20)
    return {
        "iterations_per_worker": iterations,
        "threads": [_threads(env.frontends[0], workers, iterations) for workers in WORKER_COUNTS],
        "asyncio": [asyncio.run(_tasks(env.frontends[0], w, iterations)) for w in WORKER_COUNTS],
    }


def _outcome(
    workers: int, iterations: int, elapsed_s: float, samples: list[int], final: int
) -> dict[str, Any]:
    expected = workers * iterations
    return {
        "workers": workers,
        "increments": expected,
        "final_total": final,
        "correct": final == expected,
        "throughput_per_s": expected / elapsed_s,
        "latency": summarize(samples).as_dict(),
    }


def _threads(target: str, workers: int, iterations: int) -> dict[str, Any]:
    from unified_bridge import VariableType, connect

    with connect(target) as client, client.session(new_session_id(f"thr{workers}")) as ctx:
        names = [f"counter_{i}" for i in range(_COUNTERS)]
        for name in names:
            ctx.register_variable(name, VariableType.INTEGER, 0)
        samples: list[int] = []
        lock = threading.Lock()

        def worker(index: int) -> None:
            mine = []
            for i in range(iterations):
                start = time.perf_counter_ns()
                ctx.update(names[(index + i) % _COUNTERS], _increment, max_attempts=_ATTEMPTS)
                mine.append(time.perf_counter_ns() - start)
            with lock:
                samples.extend(mine)

        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(worker, range(workers)))
        elapsed = time.perf_counter() - start
        with client.session(ctx.session_id, cache=False) as reader:
            final = sum(int(reader.get_variable(name)) for name in names)
        ctx.delete_session()
    return _outcome(workers, iterations, elapsed, samples, final)


async def _tasks(target: str, workers: int, iterations: int) -> dict[str, Any]:
    from unified_bridge import VariableType, connect_async

    async with connect_async(target) as client:
        ctx = await client.session(new_session_id(f"aio{workers}"))
        names = [f"counter_{i}" for i in range(_COUNTERS)]
        for name in names:
            await ctx.register_variable(name, VariableType.INTEGER, 0)
        samples: list[int] = []

        async def worker(index: int) -> None:
            for i in range(iterations):
                start = time.perf_counter_ns()
                await ctx.update(names[(index + i) % _COUNTERS], _increment, max_attempts=_ATTEMPTS)
                samples.append(time.perf_counter_ns() - start)

        start = time.perf_counter()
        await asyncio.gather(*(worker(index) for index in range(workers)))
        elapsed = time.perf_counter() - start
        reader = await client.session(ctx.session_id, cache=False)
        final = sum([int(await reader.get_variable(name)) for name in names])
        await reader.close()
        await ctx.delete_session()
        await ctx.close()
    return _outcome(workers, iterations, elapsed, samples, final)
