"""The core latency check: raw-stub GetVariable / SetVariable against one frontend, next to its floors.

    python -m benchmarks.core_latency [--n 2000] [--redis-url URL]

Starts a private redis-server (unless --redis-url), one frontend as its own OS process and the bare
gRPC echo server, then measures, in this one run: a redis-py HGET and a four-call EVALSHA (storage
floor), a bare grpcio unary echo (transport floor), and GetVariable / SetVariable through the
generated stubs. Ratios compare each call with the sum of the floors it stands on.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from benchmarks import baselines
from benchmarks._infra import grpc_echo_process
from benchmarks._raw import RawClient, new_session_id
from benchmarks._stats import Summary, summarize, time_calls
from benchmarks._table import text_table
from bridge_server.testing import FrontendProcess, private_redis

__all__ = ["measure", "render"]


def measure(redis_url: str, frontend: str, echo: str, n: int) -> dict[str, Summary]:
    warmup = min(n, 200)
    results = {
        "redis-py HGET": summarize(baselines.redis_hget(redis_url, n)),
        "redis-py EVALSHA (4 calls)": summarize(baselines.redis_evalsha(redis_url, n)),
        "bare gRPC unary echo": summarize(baselines.grpc_unary_echo(echo, n)),
    }
    client = RawClient(frontend, new_session_id("core"))
    try:
        client.register("x", 0)
        results["GetVariable (raw stub)"] = summarize(time_calls(lambda _: client.get("x"), n, warmup))
        results["SetVariable (raw stub)"] = summarize(time_calls(lambda i: client.set("x", i), n, warmup))
        client.delete_session()
    finally:
        client.close()
    return results


def render(results: dict[str, Summary]) -> str:
    echo, hget = results["bare gRPC unary echo"], results["redis-py HGET"]
    evalsha = results["redis-py EVALSHA (4 calls)"]
    floors = {
        "GetVariable (raw stub)": ("echo + HGET", echo.p50_us + hget.p50_us, echo.p99_us + hget.p99_us),
        "SetVariable (raw stub)": (
            "echo + EVALSHA",
            echo.p50_us + evalsha.p50_us,
            echo.p99_us + evalsha.p99_us,
        ),
    }
    rows = []
    for name, summary in results.items():
        label, floor50, floor99 = floors.get(name, ("", 0.0, 0.0))
        ratio50 = f"{summary.p50_us / floor50:.2f}x {label}" if floor50 else "(floor)"
        ratio99 = f"{summary.p99_us / floor99:.2f}x" if floor99 else ""
        rows.append([name, f"{summary.p50_us:.0f}", f"{summary.p99_us:.0f}", ratio50, ratio99])
    n = next(iter(results.values())).n
    table = text_table(["operation", "p50 us", "p99 us", "p50 ratio to floor", "p99 ratio"], rows)
    return f"{table}\n({n} calls each, sequential, one client thread, loopback)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.core_latency", description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="timed calls per operation (default 2000)")
    parser.add_argument("--redis-url", help="use this Redis instead of starting a private redis-server")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        redis_url = args.redis_url or stack.enter_context(private_redis()).url
        frontend = stack.enter_context(FrontendProcess(redis_url)).target
        echo = stack.enter_context(grpc_echo_process())
        print(render(measure(redis_url, frontend, echo, args.n)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
