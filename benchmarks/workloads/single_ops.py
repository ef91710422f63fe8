"""Workload 1: single operations -- register, get uncached / cached, update, compare-and-set, delete.

Raw-stub figures are the frontend's cost; SDK figures (when the SDK exists) are what users see.
"""

from __future__ import annotations

from typing import Any

from benchmarks._env import Env
from benchmarks._raw import RawClient, new_session_id
from benchmarks._stats import summarize, time_calls
from benchmarks.workloads import sdk_missing

__all__ = ["run"]


def run(env: Env) -> dict[str, Any]:
    n = env.scale(100, 500)
    samples = _raw_ops(env.frontends[0], n)
    reason = sdk_missing()
    if reason is None:
        samples.update(_sdk_reads(env.frontends[0], n))
    return {
        "n": n,
        "latency": {name: summarize(values).as_dict() for name, values in samples.items()},
        "sdk": reason or "measured",
        "samples_ns": samples,
    }


def _raw_ops(target: str, n: int) -> dict[str, list[int]]:
    client = RawClient(target, new_session_id("single"))
    try:
        names = [f"op_{i}" for i in range(n)]
        client.register("warm", 0)
        for _ in range(50):  # warm the channel and the frontend's definition cache
            client.get("warm")
        samples = {
            "register": time_calls(lambda i: client.register(names[i], i), n),
            "get_uncached_raw": time_calls(lambda i: client.get(names[i]), n),
            "update_raw": time_calls(lambda i: client.set(names[i], i + 1), n),
            # Every variable is at version 1 now: a compare-and-set that succeeds.
            "cas_update_raw": time_calls(lambda i: client.set(names[i], i + 2, expected_version=1), n),
            "delete": time_calls(lambda i: client.delete(names[i]), n),
        }
        client.delete_session()
        return samples
    finally:
        client.close()


def _sdk_reads(target: str, n: int) -> dict[str, list[int]]:
    from unified_bridge import VariableType, connect

    with connect(target) as client:
        cached = client.session(new_session_id("sdk-single"))
        uncached = client.session(cached.session_id, cache=False)
        try:
            cached.wait_for_cache(10)
            names = [f"s_{i}" for i in range(n)]
            for i, name in enumerate(names):
                cached.register_variable(name, VariableType.INTEGER, i)
            for name in names:
                cached.get_variable(name)  # fill the cache
            samples = {
                "get_uncached_sdk": time_calls(lambda i: uncached.get_variable(names[i]), n),
                "get_cached_sdk": time_calls(lambda i: cached.get_variable(names[i]), n),
                "update_sdk": time_calls(lambda i: cached.update_variable(names[i], i + 1), n),
            }
            cached.delete_session()
            return samples
        finally:
            uncached.close()
            cached.close()
