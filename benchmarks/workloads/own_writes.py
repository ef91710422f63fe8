"""Workload: the writer's own watch stream -- what a context's cache costs the frontend per update.

A context with its cache on follows its session's watch stream. Its writes carry its writer token,
and the frontend does not send that stream their events: it lists them, without values, on the next
message or in one message within its flush delay. Three contexts, each on a session of its own, on
the first frontend, update their variable in interleaved rounds (shuffled order):

- ``cache off``: no stream;
- ``cache on``: the default;
- ``sent back``: cache on, but its writes carry no token, so its stream is sent every event of its
  own writes in full, as a frontend did before writer tokens.

Each round reads the frontend's CPU (schedstat, every thread) around each context's updates. The
report gives p50 and frontend CPU per update, and ratios against ``cache off`` within each round
(median and range over the rounds).

Alone, on a private Redis and frontend: `python -m benchmarks.workloads.own_writes [--quick]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks._env import Env
from benchmarks._infra import cpu_ns
from benchmarks._raw import new_session_id
from benchmarks._stats import summarize, time_calls

__all__ = ["VARIANTS", "run"]

VARIANTS = ("cache off", "cache on", "sent back")


def run(env: Env) -> dict[str, Any]:
    from unified_bridge import VariableType, connect

    rounds, n = env.scale(3, 7), env.scale(100, 300)
    pid = env.frontend_pids[0] if env.frontend_pids else None
    rng = random.Random(11)
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(connect(env.frontends[0]))
        updates: dict[str, Callable[[int], Any]] = {}
        for variant in VARIANTS:
            ctx = stack.enter_context(client.session(new_session_id("own"), cache=variant != "cache off"))
            stack.callback(ctx.delete_session)
            ctx.register_variable("x", VariableType.INTEGER, 0)
            if variant != "cache off":
                ctx.wait_for_cache(10)
            if variant == "sent back":
                ctx._core.writer = ""  # its stream keeps its token; its writes no longer carry it
            updates[variant] = _updater(ctx)
        per_round: list[dict[str, dict[str, float]]] = []
        for _ in range(rounds):
            order = list(VARIANTS)
            rng.shuffle(order)
            per_round.append({variant: _timed(updates[variant], pid, n) for variant in order})
    return {"rounds": rounds, "n": n, "cpu_measured": pid is not None, **_summary(per_round)}


def _updater(ctx: Any) -> Callable[[int], Any]:
    def update(i: int) -> None:
        ctx.update_variable("x", i)

    return update


def _timed(update: Callable[[int], Any], pid: int | None, n: int) -> dict[str, float]:
    for i in range(20):
        update(i)
    time.sleep(0.05)  # the warm-up's own writes are listed before the frontend's CPU is read
    before = cpu_ns(pid) if pid else 0
    result = {"p50_us": summarize(time_calls(update, n)).p50_us}
    if pid:
        result["frontend_cpu_us"] = (cpu_ns(pid) - before) / n / 1000
    return result


def _summary(per_round: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    def median(variant: str, key: str) -> float | None:
        values = [r[variant][key] for r in per_round if key in r[variant]]
        return statistics.median(values) if values else None

    def ratio(variant: str, key: str) -> dict[str, float] | None:
        values = [r[variant][key] / r["cache off"][key] for r in per_round if key in r[variant]]
        if not values:
            return None
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {
        "variants": {
            variant: {
                "p50_us": median(variant, "p50_us"),
                "frontend_cpu_us": median(variant, "frontend_cpu_us"),
                "p50_vs_cache_off": ratio(variant, "p50_us"),
                "frontend_cpu_vs_cache_off": ratio(variant, "frontend_cpu_us"),
            }
            for variant in VARIANTS
        }
    }


def _main() -> int:
    from bridge_server.testing import FrontendProcess, private_redis

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with private_redis() as redis_server, FrontendProcess(redis_server.url) as frontend:
        env = Env(redis_server.url, (frontend.target,), (frontend.pid,), "", None, args.quick)
        json.dump(run(env), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
