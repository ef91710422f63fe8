"""`python -m benchmarks`: the whole suite, baselines included, with a table, JSON, report and plots.

Usage: python -m benchmarks [--quick] [--redis-url URL] [--target HOST:PORT[,HOST:PORT]] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks import plots, report
from benchmarks._env import Env
from benchmarks._infra import grpc_echo_process, private_etcd
from benchmarks.workloads import (
    batch,
    cache,
    coherence,
    concurrency,
    dspy_binding,
    fanout,
    floors,
    footprint,
    frontend_floor,
    local_first,
    own_writes,
    scaleout,
    sdk_missing,
    single_ops,
)
from bridge_server.testing import FrontendProcess, private_redis
from unified_bridge._transport import parse_targets

Workload = Callable[[Env], dict[str, Any]]

# (name, run, needs the SDK)
WORKLOADS: list[tuple[str, Workload, bool]] = [
    ("floors", floors.run, False),
    ("frontend_floor", frontend_floor.run, False),
    ("single_ops", single_ops.run, False),
    ("batch", batch.run, False),
    ("cache", cache.run, True),
    ("concurrency", concurrency.run, True),
    ("coherence", coherence.run, True),
    ("fanout", fanout.run, False),
    ("own_writes", own_writes.run, True),
    ("scaleout", scaleout.run, False),
    ("footprint", footprint.run, False),
    ("local_first", local_first.run, True),
    ("dspy_binding", dspy_binding.run, True),
]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="same code paths, small counts (CI smoke test)")
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    parser.add_argument("--target", help="use these frontends (comma-separated) instead of starting two")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output directory")
    return parser.parse_args(argv)


def _deploy(stack: contextlib.ExitStack, args: argparse.Namespace) -> Env:
    redis_url = args.redis_url or stack.enter_context(private_redis()).url
    pids: tuple[int, ...] = ()
    if args.target:
        targets = tuple(parse_targets(args.target))
    else:
        started = [stack.enter_context(FrontendProcess(redis_url)) for _ in range(2)]
        targets, pids = tuple(f.target for f in started), tuple(f.pid for f in started)
    echo_target = stack.enter_context(grpc_echo_process())
    etcd_target = stack.enter_context(private_etcd())
    return Env(redis_url, targets, pids, echo_target, etcd_target, args.quick)


def _run_all(env: Env) -> tuple[dict[str, Any], list[str]]:
    results: dict[str, Any] = {}
    skipped: list[str] = []
    missing = sdk_missing()
    with tqdm(total=len(WORKLOADS), unit="workload", file=sys.stderr) as bar:
        for name, run, needs_sdk in WORKLOADS:
            bar.set_description(name)
            if needs_sdk and missing:
                skipped.append(f"{name} ({missing})")
            else:
                results[name] = run(env)
            bar.update()
    if env.etcd_target is None:
        skipped.append("etcd (no etcd binary on PATH)")
    return results, skipped


def _json_ready(results: dict[str, Any]) -> dict[str, Any]:
    """Raw samples stay out of latest.json, except as microseconds for the CDF-worthy series."""
    return {
        name: {key: value for key, value in section.items() if key != "samples_ns"}
        for name, section in results.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    started, clock = report.now_iso(), time.monotonic()
    with contextlib.ExitStack() as stack:
        env = _deploy(stack, args)
        results, skipped = _run_all(env)
        versions = report.versions(env.redis_url)  # while the Redis is still up
    results["meta"] = {
        "started": started,
        "duration_s": time.monotonic() - clock,
        "quick": args.quick,
        "machine": report.machine(),
        "versions": versions,
        "cpu_count": os.cpu_count(),
        "frontends": len(env.frontends),
        "etcd": env.etcd_target is not None,
        "skipped": skipped,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    figures = plots.write_plots(results, args.out)
    (args.out / "latest.json").write_text(json.dumps(_json_ready(results), indent=2) + "\n")
    (args.out / "report.md").write_text(report.markdown_report(results, figures))
    print(report.headline_text(results))
    if floor := report.frontend_floor_text(results):
        print(f"\n{floor}")
    if local := report.local_first_text(results):
        print(f"\n{local}")
    if binding := report.dspy_binding_text(results):
        print(f"\n{binding}")
    print(f"\nwrote {args.out / 'latest.json'}, {args.out / 'report.md'} and {', '.join(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
