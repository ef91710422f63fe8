"""The frontend against its floor server, in one run, over interleaved rounds.

The floor server (`benchmarks._floor_server`) has the frontend's gRPC service, server settings and
Redis client and does only the Redis command of each call: an HGET for GetVariable, the real update
script for SetVariable. Each round times every operation once, in a shuffled order, and reads the
CPU its server process used meanwhile (all threads). The SDK's uncached get is timed in the same
shuffle as the raw stub's. Each round also runs GetVariable from 16 callers at once (with the
callers', the server's and Redis's CPU per call) and paced, one call every 5 ms (sporadic traffic).
Ratios are frontend ÷ floor within a round; the report gives their median and range over the
rounds. No watch stream is attached to either.

Alone, on a private Redis and frontend: `python -m benchmarks.workloads.frontend_floor [--quick]
[--json]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import redis

from benchmarks import baselines
from benchmarks._env import Env
from benchmarks._floor_server import FLOOR_SESSION, FLOOR_VARIABLE
from benchmarks._infra import cpu_ns, floor_server_process
from benchmarks._raw import RawClient, new_session_id
from benchmarks._stats import summarize, time_calls
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

__all__ = ["run"]

_PAIRS = (("get", "GetVariable"), ("update", "SetVariable"))
CALLERS = 16  # the target: one frontend at >= 85 % of the floor server's throughput here
PACE_S = 0.005  # the gap between paced calls


def run(env: Env) -> dict[str, Any]:
    rounds, n = env.scale(3, 9), env.scale(100, 400)
    frontend_pid = env.frontend_pids[0] if env.frontend_pids else None
    rng = random.Random(7)
    with (
        floor_server_process(env.redis_url) as (floor_target, floor_pid),
        contextlib.ExitStack() as stack,
    ):
        frontend = RawClient(env.frontends[0], new_session_id("floor"))
        stack.callback(frontend.close)
        floor_channel = grpc.insecure_channel(floor_target)
        stack.callback(floor_channel.close)
        floor = pb_grpc.UnifiedBridgeStub(floor_channel)
        storage = redis.Redis.from_url(env.redis_url)
        stack.callback(storage.close)
        frontend.register("x", 0)
        ops: dict[str, tuple[Callable[[int], Any], int | None]] = {
            "get frontend": (lambda _: frontend.get("x"), frontend_pid),
            "get floor": (lambda _: floor.GetVariable(_get_request()), floor_pid),
            "update frontend": (lambda i: frontend.set("x", i), frontend_pid),
            "update floor": (lambda i: floor.SetVariable(_set_request(i)), floor_pid),
        }
        sdk_get = _sdk_get(stack, env.frontends[0], frontend.session_id)
        if sdk_get is not None:
            ops["get sdk"] = (lambda _: sdk_get("x"), frontend_pid)
        per_round: list[dict[str, dict[str, Any]]] = []
        seconds = 0.5 if env.quick else 2.0
        paced = env.scale(30, 100)
        for _ in range(rounds):
            order = list(ops)
            rng.shuffle(order)
            measured: dict[str, dict[str, Any]] = {name: dict(_timed(*ops[name], n)) for name in order}
            for name in ("get frontend", "get floor"):
                call, pid = ops[name]
                measured[name]["throughput"] = _throughput(call, pid, storage, seconds)
                measured[name]["paced"] = _paced(call, paced)
            measured["echo"] = {"p50_us": summarize(baselines.grpc_unary_echo(env.echo_target, n)).p50_us}
            measured["hget"] = {"p50_us": summarize(baselines.redis_hget(env.redis_url, n)).p50_us}
            per_round.append(measured)
        frontend.delete_session()
    return {"rounds": rounds, "n": n, "watch_stream": False, **_summary(per_round)}


def _sdk_get(stack: contextlib.ExitStack, target: str, session_id: str) -> Callable[[str], Any] | None:
    """The SDK's get on an uncached context of the session, or None without the SDK."""
    try:
        from unified_bridge import connect
    except ImportError:
        return None
    client = stack.enter_context(connect(target))
    ctx = stack.enter_context(client.session(session_id, cache=False))
    get: Callable[[str], Any] = ctx.get_variable
    return get


def _get_request() -> pb.GetVariableRequest:
    return pb.GetVariableRequest(session_id=FLOOR_SESSION, name_or_id=FLOOR_VARIABLE)


def _set_request(value: int) -> pb.SetVariableRequest:
    return pb.SetVariableRequest(
        session_id=FLOOR_SESSION, name_or_id=FLOOR_VARIABLE, value=pb.Value(integer_value=value)
    )


def _timed(call: Callable[[int], Any], pid: int | None, n: int) -> dict[str, float]:
    for i in range(20):
        call(i)
    before = cpu_ns(pid) if pid else 0
    client_before = time.process_time()
    summary = summarize(time_calls(call, n))
    client_cpu_us = (time.process_time() - client_before) / n * 1e6
    result = {"p50_us": summary.p50_us, "p99_us": summary.p99_us, "client_cpu_us": client_cpu_us}
    if pid:
        result["server_cpu_us"] = (cpu_ns(pid) - before) / n / 1000
    return result


def _throughput(
    call: Callable[[int], Any], pid: int | None, storage: redis.Redis, seconds: float
) -> dict[str, float]:
    """Calls per second from CALLERS threads calling at once over one channel, for ``seconds``, and
    the CPU per call of the callers (this process), the server and Redis."""
    done = [0] * CALLERS
    stop = threading.Event()
    server_before = cpu_ns(pid) if pid else 0
    redis_before = _redis_cpu_s(storage)
    callers_before = time.process_time()

    def caller(index: int) -> None:
        while not stop.is_set():
            call(index)
            done[index] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    calls = max(sum(done), 1)
    figures = {
        "ops_per_s": sum(done) / seconds,
        "caller_cpu_us": (time.process_time() - callers_before) / calls * 1e6,
        "redis_cpu_us": (_redis_cpu_s(storage) - redis_before) / calls * 1e6,
    }
    if pid:
        figures["server_cpu_us"] = (cpu_ns(pid) - server_before) / calls / 1000
    return figures


def _redis_cpu_s(storage: redis.Redis) -> float:
    cpu = storage.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _paced(call: Callable[[int], Any], n: int) -> dict[str, float]:
    """p50 and p99 of ``n`` calls made one at a time with PACE_S between them (sporadic traffic:
    nothing is warm from the call before)."""
    samples = []
    for i in range(n):
        time.sleep(PACE_S)
        started = time.perf_counter_ns()
        call(i)
        samples.append(time.perf_counter_ns() - started)
    summary = summarize(samples)
    return {"p50_us": summary.p50_us, "p99_us": summary.p99_us}


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _summary(per_round: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for op, _ in _PAIRS:
        front = [r[f"{op} frontend"] for r in per_round]
        floor = [r[f"{op} floor"] for r in per_round]
        floor_sum = [r["echo"]["p50_us"] + r["hget"]["p50_us"] for r in per_round]
        entry: dict[str, Any] = {
            "frontend_p50_us": _spread([f["p50_us"] for f in front]),
            "floor_p50_us": _spread([f["p50_us"] for f in floor]),
            "frontend_p99_us": _spread([f["p99_us"] for f in front]),
            "floor_p99_us": _spread([f["p99_us"] for f in floor]),
            "p50_ratio_to_floor": _spread(
                [a["p50_us"] / b["p50_us"] for a, b in zip(front, floor, strict=True)]
            ),
            "p99_ratio_to_floor": _spread(
                [a["p99_us"] / b["p99_us"] for a, b in zip(front, floor, strict=True)]
            ),
            "client_cpu_us": _spread([f["client_cpu_us"] for f in front]),
        }
        if op == "get":
            entry["p50_ratio_to_echo_plus_hget"] = _spread(
                [a["p50_us"] / s for a, s in zip(front, floor_sum, strict=True)]
            )
        if all("server_cpu_us" in f for f in front + floor):
            entry["frontend_cpu_us"] = _spread([f["server_cpu_us"] for f in front])
            entry["floor_cpu_us"] = _spread([f["server_cpu_us"] for f in floor])
            entry["cpu_ratio_to_floor"] = _spread(
                [a["server_cpu_us"] / b["server_cpu_us"] for a, b in zip(front, floor, strict=True)]
            )
        operations[op] = entry
    front = [r["get frontend"]["throughput"] for r in per_round]
    floor = [r["get floor"]["throughput"] for r in per_round]
    throughput: dict[str, Any] = {
        "callers": CALLERS,
        "frontend_ops_per_s": _spread([f["ops_per_s"] for f in front]),
        "floor_ops_per_s": _spread([f["ops_per_s"] for f in floor]),
        "share_of_floor": _spread(
            [a["ops_per_s"] / b["ops_per_s"] for a, b in zip(front, floor, strict=True)]
        ),
    }
    for figure in ("caller_cpu_us", "server_cpu_us", "redis_cpu_us"):
        if all(figure in f for f in front + floor):
            throughput[f"frontend_{figure}"] = _spread([f[figure] for f in front])
            throughput[f"floor_{figure}"] = _spread([f[figure] for f in floor])
    front_paced = [r["get frontend"]["paced"] for r in per_round]
    floor_paced = [r["get floor"]["paced"] for r in per_round]
    paced = {
        "gap_ms": PACE_S * 1000,
        "frontend_p50_us": _spread([f["p50_us"] for f in front_paced]),
        "floor_p50_us": _spread([f["p50_us"] for f in floor_paced]),
        "p50_ratio_to_floor": _spread(
            [a["p50_us"] / b["p50_us"] for a, b in zip(front_paced, floor_paced, strict=True)]
        ),
    }
    summary: dict[str, Any] = {"operations": operations, "get_throughput": throughput, "get_paced": paced}
    if all("get sdk" in r for r in per_round):
        summary["sdk_get"] = {
            "p50_us": _spread([r["get sdk"]["p50_us"] for r in per_round]),
            "p50_ratio_to_raw": _spread(
                [r["get sdk"]["p50_us"] / r["get frontend"]["p50_us"] for r in per_round]
            ),
            "client_cpu_us": _spread([r["get sdk"]["client_cpu_us"] for r in per_round]),
        }
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks import report
    from benchmarks._infra import grpc_echo_process
    from bridge_server.testing import FrontendProcess, private_redis

    parser = argparse.ArgumentParser(prog="python -m benchmarks.workloads.frontend_floor")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 100 calls instead of 9 of 400")
    parser.add_argument("--json", action="store_true", help="the table and the figures as one JSON object")
    args = parser.parse_args(argv)
    with (
        private_redis() as redis_server,
        FrontendProcess(redis_server.url) as frontend,
        grpc_echo_process() as echo,
    ):
        env = Env(redis_server.url, (frontend.target,), (frontend.pid,), echo, None, args.quick)
        results = {"frontend_floor": run(env)}
    table = report.frontend_floor_text(results)
    print(json.dumps({"table": table, "results": results["frontend_floor"]}) if args.json else table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
