"""Workload 5: coherence -- from an update's return in one OS process to the new value being served
from another process's cache, the two connected to different frontends.

The child (spawned, with its own SessionContext) polls its cache with cached reads, which cost
microseconds and never reach the server while the old value is cached; the watch stream replaces
the entry when the event arrives. Times are `time.time_ns()` (one system clock for both processes);
the poll sleeps ~20 us between reads so that it does not hold the GIL against the stream thread.
Linux stretches such a sleep by its 50 us default timer slack (a 20 us sleep took 97 us here); the
child sets its slack to 1 us (`prctl(PR_SET_TIMERSLACK)`), so a sleep takes ~47 us and a value is
seen ~25 us after it lands on average, not ~50.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from benchmarks._env import Env
from benchmarks._raw import new_session_id
from benchmarks._stats import summarize

__all__ = ["run"]

_POLL_S = 20e-6
_VISIBLE_TIMEOUT_S = 5.0


_PR_SET_TIMERSLACK = 29


def _fine_sleeps() -> None:
    """Timer slack of 1 us for this process (Linux; elsewhere sleeps stay as they are)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)


def _child(target: str, session_id: str, pipe: Connection) -> None:
    """Runs in the other process: report when each announced value becomes visible in the cache."""
    from unified_bridge import connect

    _fine_sleeps()

    with connect(target) as client, client.session(session_id) as ctx:
        ctx.wait_for_cache(10)
        ctx.get_variable("x")
        pipe.send("ready")
        while (expected := pipe.recv()) is not None:
            ctx.get_variable("x")  # make sure the old value is cached
            pipe.send("armed")
            deadline = time.monotonic() + _VISIBLE_TIMEOUT_S
            while ctx.get_variable("x") != expected and time.monotonic() < deadline:
                time.sleep(_POLL_S)
            pipe.send(time.time_ns())


def run(env: Env) -> dict[str, Any]:
    from unified_bridge import VariableType, connect

    rounds = env.scale(30, 200)
    writer_target = env.frontends[0]
    reader_target = env.frontends[1 % len(env.frontends)]
    spawn = multiprocessing.get_context("spawn")  # never fork a process that runs grpc threads
    after_return: list[int] = []
    after_start: list[int] = []
    with connect(writer_target) as client, client.session(new_session_id("coherence")) as ctx:
        ctx.register_variable("x", VariableType.INTEGER, 0)
        parent_end, child_end = spawn.Pipe()
        child = spawn.Process(target=_child, args=(reader_target, ctx.session_id, child_end), daemon=True)
        child.start()
        try:
            if not parent_end.poll(60) or parent_end.recv() != "ready":
                raise RuntimeError("coherence child did not start")
            for value in range(1, rounds + 1):
                parent_end.send(value)
                parent_end.recv()  # armed
                time.sleep(0.002)  # let the child settle into its poll loop
                started = time.time_ns()
                ctx.update_variable("x", value)
                returned = time.time_ns()
                seen = int(parent_end.recv())
                after_return.append(seen - returned)
                after_start.append(seen - started)
            parent_end.send(None)
            child.join(15)
        finally:
            if child.is_alive():
                child.terminate()
                child.join(5)
        ctx.delete_session()
    return {
        "rounds": rounds,
        "same_frontend": writer_target == reader_target,
        "latency": {
            "update_return_to_visible": summarize(after_return).as_dict(),
            "update_start_to_visible": summarize(after_start).as_dict(),
        },
    }
