"""Workload 2: batch vs individual updates and gets of 10, 100 and 1000 variables (raw stubs).

Each figure is the median over a few repetitions of the whole operation; the batch time's growth
with size is fitted with a line (the per-item cost is its slope, r^2 says how linear it is).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks._env import Env
from benchmarks._raw import RawClient, new_session_id
from benchmarks._stats import time_calls

__all__ = ["run"]


def _median_ms(action: Callable[[], object], repetitions: int) -> float:
    return statistics.median(time_calls(lambda _: action(), repetitions)) / 1e6


def run(env: Env) -> dict[str, Any]:
    sizes = [10, 100] if env.quick else [10, 100, 1000]
    repetitions = env.scale(2, 3)
    client = RawClient(env.frontends[0], new_session_id("batch"))
    try:
        names = [f"b_{i}" for i in range(max(sizes))]
        for name in names:
            client.register(name, 0)
        rows = [_one_size(client, names[:size], repetitions) for size in sizes]
        client.delete_session()
    finally:
        client.close()
    return {"sizes": rows, "linearity": {op: _fit(rows, op) for op in _BATCH_OPS}}


_BATCH_OPS = ("batch_update_atomic_ms", "batch_update_nonatomic_ms", "batch_get_ms")


def _one_size(client: RawClient, names: list[str], repetitions: int) -> dict[str, float]:
    counter = iter(range(1, 1 << 30))

    def individual_updates() -> None:
        value = next(counter)
        for name in names:
            client.set(name, value)

    def batch(atomic: bool) -> Callable[[], None]:
        return lambda: client.set_many(dict.fromkeys(names, next(counter)), atomic=atomic)

    row = {
        "size": float(len(names)),
        "individual_update_ms": _median_ms(individual_updates, repetitions),
        "batch_update_atomic_ms": _median_ms(batch(True), repetitions),
        "batch_update_nonatomic_ms": _median_ms(batch(False), repetitions),
        "individual_get_ms": _median_ms(lambda: [client.get(name) for name in names], repetitions),
        "batch_get_ms": _median_ms(lambda: client.get_many(names), repetitions),
    }
    row["update_speedup_atomic"] = row["individual_update_ms"] / row["batch_update_atomic_ms"]
    row["update_speedup_nonatomic"] = row["individual_update_ms"] / row["batch_update_nonatomic_ms"]
    row["get_speedup"] = row["individual_get_ms"] / row["batch_get_ms"]
    return row


def _fit(rows: list[dict[str, float]], op: str) -> dict[str, float]:
    """Least-squares line through (size, time): fixed cost, per-item cost and r^2."""
    x = np.array([row["size"] for row in rows])
    y = np.array([row[op] for row in rows])
    slope, intercept = np.polyfit(x, y, 1)
    predicted = slope * x + intercept
    spread = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - predicted) ** 2).sum()) / spread if spread else 1.0
    return {"fixed_ms": float(intercept), "per_item_us": float(slope) * 1000, "r2": r2}
