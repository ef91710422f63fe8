"""Processes only the benchmarks start: the bare gRPC echo server and etcd; and a process's RSS.

Redis and frontends come from `bridge_server.testing`, as in the tests. Everything runs as its own
OS process on loopback, on a free port, in a temporary directory, and stops when its context ends.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bridge_server.testing import LoggedProcess, free_port, wait_until, without_bridge_settings

__all__ = ["cpu_ns", "floor_server_process", "grpc_echo_process", "private_etcd", "rss_kib"]

# benchmarks._echo_server announces its port the way the frontend does.
_LISTENING = re.compile(r"listening on [^ ]+:(\d+)")


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux: VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@contextlib.contextmanager
def grpc_echo_process() -> Iterator[str]:
    """The bare grpc.aio echo/push server (`benchmarks._echo_server`); yields its target."""
    with LoggedProcess(
        [sys.executable, "-m", "benchmarks._echo_server"], without_bridge_settings()
    ) as process:
        yield f"127.0.0.1:{int(process.wait_for_line(_LISTENING).group(1))}"


def _etcd_answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def private_etcd() -> Iterator[str | None]:
    """A single-member etcd on loopback with a temporary data directory; yields its gRPC target,
    or None when no `etcd` binary is on PATH."""
    binary = shutil.which("etcd")
    if binary is None:
        yield None
        return
    client_port, peer_port = free_port(), free_port()
    client_url, peer_url = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    with tempfile.TemporaryDirectory(prefix="ub-bench-etcd-") as directory:
        args = [
            binary,
            "--name", "bench",
            "--data-dir", str(Path(directory) / "data"),
            "--listen-client-urls", client_url,
            "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url,
            "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"bench={peer_url}",
            "--log-level", "error",
        ]  # fmt: skip
        with LoggedProcess(args) as process:
            wait_until(lambda: _etcd_answers(client_port), f"etcd on port {client_port}")
            if process.process.poll() is not None:
                raise RuntimeError("etcd exited:\n" + "".join(process.log[-20:]))
            yield f"127.0.0.1:{client_port}"


def cpu_ns(pid: int) -> int:
    """Nanoseconds of CPU a process has used, all its threads together (Linux schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


@contextlib.contextmanager
def floor_server_process(redis_url: str) -> Iterator[tuple[str, int]]:
    """The frontend's floor (`benchmarks._floor_server`) on `redis_url`; yields (target, pid)."""
    with LoggedProcess(
        [sys.executable, "-m", "benchmarks._floor_server", redis_url], without_bridge_settings()
    ) as process:
        port = int(process.wait_for_line(_LISTENING).group(1))
        yield f"127.0.0.1:{port}", process.pid
