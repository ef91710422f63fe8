"""Latency samples and their summaries. All samples are nanoseconds from `time.perf_counter_ns`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

__all__ = ["Summary", "summarize", "time_async_calls", "time_calls"]


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
