"""Workload 6: scale-out -- throughput with 1 and 2 frontends, clients spread round-robin.

Client load comes from several OS processes (raw stubs, half gets and half sets) so that the
client's GIL is not the limit. This machine has few cores: the frontends, Redis and the clients
share them, so the second frontend can only help as far as a core is idle.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

from benchmarks._env import Env
from benchmarks._raw import RawClient, new_session_id

__all__ = ["run"]

_CLIENT_PROCESSES = 4


def _client(target: str, session_id: str, duration_s: float, start_at: float) -> int:
    client = RawClient(target, session_id)
    name = f"v_{os.getpid()}"
    client.register(name, 0)
    client.get(name)
    time.sleep(max(0.0, start_at - time.time()))
    operations = 0
    deadline = time.time() + duration_s
    while time.time() < deadline:
        if operations % 2:
            client.set(name, operations)
        else:
            client.get(name)
        operations += 1
    client.close()
    return operations


def _throughput(targets: tuple[str, ...], duration_s: float) -> float:
    owner = RawClient(targets[0], new_session_id("scale"))  # creates the session the clients share
    try:
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(_CLIENT_PROCESSES) as pool:
            start_at = time.time() + 3.0  # after every client has imported and connected
            jobs = [
                (targets[i % len(targets)], owner.session_id, duration_s, start_at)
                for i in range(_CLIENT_PROCESSES)
            ]
            counts = pool.starmap(_client, jobs)
    finally:
        owner.delete_session()
        owner.close()
    return sum(counts) / duration_s


def run(env: Env) -> dict[str, Any]:
    duration = env.scale(2, 5)
    result: dict[str, Any] = {
        "client_processes": _CLIENT_PROCESSES,
        "duration_s": duration,
        "cpu_count": os.cpu_count(),
        "ops_per_s": {"1": _throughput(env.frontends[:1], duration)},
    }
    if len(env.frontends) >= 2:
        result["ops_per_s"]["2"] = _throughput(env.frontends[:2], duration)
        result["speedup"] = result["ops_per_s"]["2"] / result["ops_per_s"]["1"]
    return result
