"""Workload: fan-out -- what the watchers of one session cost the frontend that serves them.

N watch streams follow one session on the first frontend, from threads of this process, while a
writer updates it through the second (so the first frontend's CPU is the fan-out's alone). Two
figures, from that frontend's own CPU (schedstat, every thread) and from Redis's own counters:

- frontend CPU per event per watcher while a writer updates the session (a frontend decodes and
  encodes each event once, however many watch it, so this falls as N grows);
- script calls per second while the N watchers sit idle (their idle checks share one read per
  session per check interval, so this does not grow with N).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import redis

from benchmarks._env import Env
from benchmarks._infra import cpu_ns
from benchmarks._raw import RawClient, new_session_id
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

__all__ = ["run"]


class _Watchers:
    """N streams of one session, counting the UPDATED events each has received."""

    def __init__(self, target: str, session_id: str, count: int) -> None:
        self._channel = grpc.insecure_channel(target)
        stub = pb_grpc.UnifiedBridgeStub(self._channel)
        self.counts = [0] * count
        self.caught_up = [False] * count
        self._calls = [
            stub.WatchSession(pb.WatchSessionRequest(session_id=session_id, from_now=True))
            for _ in range(count)
        ]
        self._threads = [threading.Thread(target=self._follow, args=(i,), daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()

    def _follow(self, index: int) -> None:
        try:
            for event in self._calls[index]:
                if event.kind == pb.EVENT_KIND_UPDATED:
                    self.counts[index] += 1
                elif event.kind == pb.EVENT_KIND_CAUGHT_UP:
                    self.caught_up[index] = True
        except grpc.RpcError:
            return  # cancelled at the end of the run

    def wait_until_following(self, timeout: float = 60.0) -> None:
        """Every stream has caught up (from_now streams miss what is written before)."""
        self._wait(lambda: all(self.caught_up), "every stream to catch up", timeout)

    def wait_for(self, each: int, timeout: float = 60.0) -> None:
        self._wait(lambda: min(self.counts) >= each, f"every stream to get {each} events", timeout)

    @staticmethod
    def _wait(done: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.005)

    def close(self) -> None:
        for call in self._calls:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it untyped
        for thread in self._threads:
            thread.join(timeout=5)
        self._channel.close()


def run(env: Env) -> dict[str, Any]:
    if not env.frontend_pids:
        return {"skipped": "frontends given with --target: no pid to read CPU from"}
    pid = env.frontend_pids[0]
    results: dict[str, Any] = {"watchers": []}
    events = env.scale(50, 300)
    results["watchers"].append(_one_count(env, pid, 1, events, idle_window=0.0))
    # Idle checks come every 5 s (the default interval) and at most 2.5 s late: watch two or more.
    many = env.scale(20, 100)
    results["watchers"].append(_one_count(env, pid, many, events, idle_window=env.scale(11, 21)))
    return results


def _one_count(env: Env, pid: int, count: int, events: int, idle_window: float) -> dict[str, float]:
    writer = RawClient(env.frontends[1 % len(env.frontends)], new_session_id("fanout"))
    writer.register("x", 0)
    watchers = _Watchers(env.frontends[0], writer.session_id, count)
    storage = redis.Redis.from_url(env.redis_url)
    try:
        watchers.wait_until_following()
        before = cpu_ns(pid)
        for value in range(1, events + 1):
            writer.set("x", value)
        watchers.wait_for(events)
        busy_ns = cpu_ns(pid) - before
        result = {
            "watchers": count,
            "events": events,
            "frontend_cpu_us_per_event_per_watcher": busy_ns / 1000 / (events * count),
        }
        if idle_window:
            calls_before = _script_calls(storage)
            time.sleep(idle_window)
            result["idle_script_calls_per_s"] = (_script_calls(storage) - calls_before) / idle_window
        return result
    finally:
        watchers.close()
        storage.close()
        writer.delete_session()
        writer.close()


def _script_calls(storage: redis.Redis) -> int:
    stats = storage.info("commandstats").get("cmdstat_evalsha")
    return int(stats["calls"]) if stats else 0
