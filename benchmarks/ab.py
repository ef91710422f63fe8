"""A/B: this checkout's frontend against another commit's, on one private Redis, interleaved.

    python -m benchmarks.ab REV [--op get|set|batch-set|batch-get] [--items N] [--rounds R]

REV's tree is checked out in a temporary git worktree (its `bridge_server/lua` linked to that
worktree's `lua/`, as the package maps it), and one frontend runs from each tree. Every round runs
the operation on both, in a shuffled order, and reads each frontend's CPU (schedstat, every thread)
around its calls; Redis time in scripts ("script") comes from `cmdstat_evalsha`. The report gives
medians per call (per item for batches) and the ratio new/old within each round: median and range.
Comparing HEAD with itself shows the noise of this machine: over 7 rounds of GetVariable it gave
1.003x (0.946-1.051), over 2 rounds 0.93x; read no less than 7 rounds, and nothing under 5 %.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import redis

from benchmarks._infra import cpu_ns
from bridge_server.testing import private_redis
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _worktree(rev: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ub-ab-") as parent:
        tree = Path(parent) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), rev], check=True
        )
        try:
            (tree / "bridge_server" / "lua").symlink_to("../lua")
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _frontend(tree: Path, redis_url: str) -> Iterator[tuple[int, pb_grpc.UnifiedBridgeStub]]:
    """A frontend running the code of ``tree`` (first on its path), and a stub on it."""
    port = _free_port()
    paths = [str(tree), str(tree / "sdk")]
    code = (
        f"import sys; sys.path[:0] = {paths!r}; import bridge_server.__main__ as m; "
        f"sys.exit(m.main(['--redis-url', {redis_url!r}, '--port', '{port}', '--host', '127.0.0.1']))"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=tree, stderr=subprocess.DEVNULL)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield process.pid, pb_grpc.UnifiedBridgeStub(channel)
    finally:
        channel.close()
        process.terminate()
        process.wait(10)


def _operation(stub: pb_grpc.UnifiedBridgeStub, session_id: str, op: str, items: int) -> Callable[[int], Any]:
    stub.CreateSession(pb.CreateSessionRequest(session_id=session_id))
    names = [f"v{i}" for i in range(items if op.startswith("batch") else 1)]
    for name in names:
        stub.RegisterVariable(
            pb.RegisterVariableRequest(
                session_id=session_id,
                name=name,
                type=pb.VARIABLE_TYPE_INTEGER,
                value=pb.Value(integer_value=0),
            )
        )
    if op == "get":
        get = pb.GetVariableRequest(session_id=session_id, name_or_id=names[0])
        return lambda _: stub.GetVariable(get)
    if op == "set":
        return lambda i: stub.SetVariable(
            pb.SetVariableRequest(session_id=session_id, name_or_id=names[0], value=pb.Value(integer_value=i))
        )
    if op == "batch-get":
        many = pb.GetVariablesRequest(session_id=session_id, names_or_ids=names)
        return lambda _: stub.GetVariables(many)
    batch = pb.SetVariablesRequest(session_id=session_id, atomic=True)
    for i, name in enumerate(names):
        batch.updates.add(name_or_id=name, value=pb.Value(integer_value=i))
    return lambda _: stub.SetVariables(batch)


def _evalsha_us(client: redis.Redis) -> float:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return float(stats.get("usec", 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the commit to compare this checkout with")
    parser.add_argument("--op", choices=("get", "set", "batch-set", "batch-get"), default="get")
    parser.add_argument("--items", type=int, default=1000, help="items per batch (batch ops)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=0, help="calls per round (default: 400, 20 for batches)")
    args = parser.parse_args(argv)
    calls = args.calls or (20 if args.op.startswith("batch") else 400)
    per = args.items if args.op.startswith("batch") else 1
    with contextlib.ExitStack() as stack:
        old_tree = stack.enter_context(_worktree(args.rev))
        server = stack.enter_context(private_redis())
        client = stack.enter_context(redis.Redis.from_url(server.url))
        sides: dict[str, tuple[int, Callable[[int], Any]]] = {}
        for side, tree in (("old", old_tree), ("new", ROOT)):
            pid, stub = stack.enter_context(_frontend(tree, server.url))
            sides[side] = (pid, _operation(stub, f"ab-{side}-{os.getpid()}", args.op, args.items))
        figures: dict[str, dict[str, list[float]]] = {
            side: {"cpu": [], "p50": [], "script": []} for side in sides
        }
        rng = random.Random(5)
        for _ in range(args.rounds):
            for side in rng.sample(sorted(sides), 2):
                pid, call = sides[side]
                for i in range(max(3, calls // 10)):
                    call(i)
                cpu, redis_us, samples = cpu_ns(pid), _evalsha_us(client), []
                for i in range(calls):
                    started = time.perf_counter_ns()
                    call(i)
                    samples.append(time.perf_counter_ns() - started)
                figures[side]["cpu"].append((cpu_ns(pid) - cpu) / calls / per / 1000)
                figures[side]["script"].append((_evalsha_us(client) - redis_us) / calls / per)
                figures[side]["p50"].append(statistics.median(samples) / per / 1000)
    unit = "per item" if per > 1 else "per call"
    for side, kinds in figures.items():
        medians = ", ".join(f"{kind} {statistics.median(values):.2f} us" for kind, values in kinds.items())
        print(f"{side} ({args.rev if side == 'old' else 'this checkout'}), {unit}: {medians}")
    for kind in ("cpu", "p50"):
        ratios = [
            new / old for new, old in zip(figures["new"][kind], figures["old"][kind], strict=True) if old
        ]
        print(
            f"new/old {kind}: {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) "
            f"over {args.rounds} rounds"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
