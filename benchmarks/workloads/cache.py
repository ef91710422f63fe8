"""Workload 3: cache effectiveness -- 20 variables, 1000 reads, 80 % of them on the hottest 20 %.

Measured three ways through the SDK: with the cache, without it (`cache=False`), and with the cache
while a writer in another thread keeps updating the hot variables (each update invalidates, and the
watch stream refreshes the entry in this context's cache).

Then a cached read against what it stands for: a bare dict read with a TTL check (the least a
near cache can do), `ctx["x"]` and `ctx.v.x` on a warm cache, timed in blocks with the harness's own
cost taken out (as in the local-first workload). Targets (reference only): `ctx["x"]` within 1.5x of
the dict read, `ctx.v.x` within 2x of `ctx["x"]`.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from benchmarks._env import Env
from benchmarks._raw import new_session_id
from benchmarks._stats import summarize, time_calls
from benchmarks.workloads.local_first import calibrate, measure

__all__ = ["run"]

_VARIABLES = 20
_HOT = 4  # 20 % of 20
_WRITE_GAP_S = 0.005  # the concurrent writer: ~200 updates/s on the hot variables


def _pattern(reads: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    hot = [f"c_{i}" for i in range(_HOT)]
    cold = [f"c_{i}" for i in range(_HOT, _VARIABLES)]
    return [rng.choice(hot) if rng.random() < 0.8 else rng.choice(cold) for _ in range(reads)]


def run(env: Env) -> dict[str, Any]:
    from unified_bridge import VariableType, connect

    reads = env.scale(300, 1000)
    pattern = _pattern(reads)
    with connect(env.frontends[0]) as client:
        ctx = client.session(new_session_id("cache"))
        plain = client.session(ctx.session_id, cache=False)
        try:
            ctx.wait_for_cache(10)
            for i in range(_VARIABLES):
                ctx.register_variable(f"c_{i}", VariableType.FLOAT, i * 0.1)
            uncached = time_calls(lambda i: plain[pattern[i]], reads)
            ctx.clear_cache()
            stats_before = ctx.cache_stats()
            cached = time_calls(lambda i: ctx[pattern[i]], reads)
            hit_rate = _hit_rate(stats_before, ctx.cache_stats())
            ctx.clear_cache()
            stats_before = ctx.cache_stats()
            with _writer(plain):
                contended = time_calls(lambda i: ctx[pattern[i]], reads)
            contended_hit_rate = _hit_rate(stats_before, ctx.cache_stats())
            warm = _warm_reads(ctx, env.scale(100, 1000), env.scale(2000, 20000))
            ctx.delete_session()
        finally:
            plain.close()
            ctx.close()
    u, c, w = summarize(uncached), summarize(cached), summarize(contended)
    return {
        "reads": reads,
        "hit_rate": hit_rate,
        "hit_rate_with_writer": contended_hit_rate,
        "speedup_mean": u.mean_us / c.mean_us,
        "speedup_mean_with_writer": u.mean_us / w.mean_us,
        "latency": {"uncached": u.as_dict(), "cached": c.as_dict(), "cached_with_writer": w.as_dict()},
        "warm_reads": warm,
        "samples_ns": {"uncached": uncached, "cached": cached, "cached_with_writer": contended},
    }


def _warm_reads(ctx: Any, blocks: int, singles: int) -> dict[str, Any]:
    """avg/p50/p99 of a dict read with a TTL check, `ctx["x"]` and `ctx.v.x` on a warm cache."""
    entries = {"c_0": (0.0, time.monotonic() + 3600)}
    clock = time.monotonic

    def dict_with_ttl(i: int) -> Any:
        value, expires = entries["c_0"]
        return value if clock() < expires else None

    ctx["c_0"]  # cached now
    calls = {"dict_with_ttl": dict_with_ttl, "item": lambda i: ctx["c_0"], "attribute": lambda i: ctx.v.c_0}
    calibration = calibrate(blocks, singles)
    figures = {name: measure(call, calibration, blocks, singles, 100)[0] for name, call in calls.items()}
    return {
        **figures,
        "item_vs_dict": figures["item"]["avg_us"] / figures["dict_with_ttl"]["avg_us"],
        "attribute_vs_item": figures["attribute"]["avg_us"] / figures["item"]["avg_us"],
        "targets": {"item_vs_dict": 1.5, "attribute_vs_item": 2.0},
    }


def _hit_rate(before: dict[str, float], after: dict[str, float]) -> float:
    hits = after["hits"] - before["hits"]
    misses = after["misses"] - before["misses"]
    return hits / (hits + misses) if hits + misses else 0.0


class _writer:
    """A thread updating the hot variables every few milliseconds until the block ends."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-writer", daemon=True)
        self.writes = 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._ctx.update_variable(f"c_{self.writes % _HOT}", time.time() % 1.0)
            self.writes += 1
            self._stop.wait(_WRITE_GAP_S)

    def __enter__(self) -> _writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
