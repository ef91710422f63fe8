"""Latency samples and their summaries. All samples are nanoseconds from `time.perf_counter_ns`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

__all__ = [
    "Summary",
    "net_mean_ns",
    "net_samples",
    "summarize",
    "time_async_calls",
    "time_blocks",
    "time_calls",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Summary:
    """Percentiles of one latency sample, in microseconds."""

    n: int
    mean_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def summarize(samples_ns: list[int]) -> Summary:
    if not samples_ns:
        raise ValueError("no samples")
    us = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    return Summary(len(us), float(us.mean()), float(p50), float(p90), float(p99), float(us.max()))


def time_calls(call: Callable[[int], Any], n: int, warmup: int = 0) -> list[int]:
    """Run `call(i)` for i in range(n) after `warmup` untimed calls; nanoseconds per call."""
    for i in range(warmup):
        call(i)
    samples: list[int] = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        call(i)
        samples.append(clock() - start)
    return samples


def time_blocks(call: Callable[[int], Any], blocks: int, per_block: int, warmup: int = 1) -> list[int]:
    """Nanoseconds per block of `per_block` calls `call(i)`, i in range(per_block), after `warmup`
    untimed blocks: two clock reads per block, so a call far shorter than a clock read can be timed."""
    indices = range(per_block)
    for _ in range(warmup):
        for i in indices:
            call(i)
    samples: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(blocks):
        start = clock()
        for i in indices:
            call(i)
        samples.append(clock() - start)
    return samples


def net_mean_ns(block_ns: list[int], baseline_block_ns: list[int], per_block: int) -> float:
    """Mean nanoseconds per call from timed blocks, less the harness's own cost per call (loop and
    call of a no-op, timed the same way; its median, as it is a constant). Never below zero."""
    if not block_ns or not baseline_block_ns or per_block < 1:
        raise ValueError("no samples")
    total = sum(block_ns) / (len(block_ns) * per_block)
    harness = float(np.median(baseline_block_ns)) / per_block
    return max(total - harness, 0.0)


def net_samples(samples_ns: list[int], overhead_ns: float) -> list[int]:
    """Single-call samples less the harness's cost of one timed call (clock reads and the call of a
    no-op: pass the median of such samples), rounded, never below zero."""
    return [max(round(sample - overhead_ns), 0) for sample in samples_ns]


async def time_async_calls(call: Callable[[int], Awaitable[Any]], n: int, warmup: int = 0) -> list[int]:
    for i in range(warmup):
        await call(i)
    samples: list[int] = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        await call(i)
        samples.append(clock() - start)
    return samples
