"""Baselines in the same run: the storage floor (Redis), the transport floor (bare gRPC), and etcd."""

from __future__ import annotations

from typing import Any

from benchmarks import baselines
from benchmarks._env import Env
from benchmarks._stats import summarize, time_calls
from benchmarks.etcd import EtcdClient

__all__ = ["run"]


def run(env: Env) -> dict[str, Any]:
    n = env.scale(300, 2000)
    samples = {
        "redis_hget": baselines.redis_hget(env.redis_url, n),
        "redis_evalsha_4_calls": baselines.redis_evalsha(env.redis_url, n),
        "grpc_unary_echo": baselines.grpc_unary_echo(env.echo_target, n),
        "grpc_stream_push": baselines.grpc_push(env.echo_target, env.scale(100, 500)),
    }
    etcd: dict[str, Any] = {"measured": False, "reason": "no etcd binary on PATH"}
    if env.etcd_target is not None:
        etcd_samples = _etcd(env.etcd_target, n, env.scale(10, 50))
        samples.update(etcd_samples)
        etcd = {"measured": True}
    return {
        "latency": {name: summarize(values).as_dict() for name, values in samples.items()},
        "etcd": etcd,
        "samples_ns": samples,
    }


def _etcd(target: str, n: int, txn_n: int) -> dict[str, list[int]]:
    client = EtcdClient(target)
    try:
        client.put(b"bench/get", b"x" * 16)
        items = {f"bench/txn/{i}".encode(): b"1" for i in range(100)}
        return {
            "etcd_get": time_calls(lambda _: client.get(b"bench/get"), n, warmup=50),
            "etcd_put": time_calls(lambda i: client.put(b"bench/put", str(i).encode()), n, warmup=50),
            "etcd_txn_100_puts": time_calls(lambda _: client.txn_puts(items), txn_n, warmup=3),
            "etcd_watch_put_to_event": client.watch_latencies(b"bench/watch", max(n // 4, 50)),
        }
    finally:
        client.close()
