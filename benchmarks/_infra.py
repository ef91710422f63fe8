"""Processes the suite measures: a private redis-server, frontends, the bare gRPC echo server, etcd.

Everything runs as its own OS process on loopback, on a free port, in a temporary directory, and is
stopped when its context manager exits. (Deliberately independent of `tests/`: the suite must run
from an installed tree without the test package.)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import redis

__all__ = [
    "ManagedProcess",
    "free_port",
    "frontend_process",
    "grpc_echo_process",
    "private_etcd",
    "private_redis",
    "rss_kib",
    "wait_until",
]

_START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = _START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.02)


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux: VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class ManagedProcess:
    """A child process whose stderr is drained on a thread (so it never blocks on a full pipe)."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self.log: list[str] = []
        self._lines = threading.Condition()
        self._closed = False
        threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _drain(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            with self._lines:
                self.log.append(line)
                self._lines.notify_all()
        with self._lines:
            self._closed = True
            self._lines.notify_all()

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = _START_TIMEOUT) -> re.Match[str]:
        """The first log line matching `pattern` (raises if the process exits first)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._lines:
            while True:
                for line in self.log[seen:]:
                    if match := pattern.search(line):
                        return match
                seen = len(self.log)
                if self._closed:
                    raise RuntimeError(f"{self.process.args!r} exited:\n" + "".join(self.log[-20:]))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no line matching {pattern.pattern!r} from {self.process.args!r}")
                self._lines.wait(remaining)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextlib.contextmanager
def _managed(args: Sequence[str], env: dict[str, str] | None = None) -> Iterator[ManagedProcess]:
    process = ManagedProcess(args, env)
    try:
        yield process
    finally:
        process.stop()


def _clean_env() -> dict[str, str]:
    """The environment for children: no BRIDGE_* settings leak in from the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}


def _redis_answers(port: int, process: ManagedProcess) -> bool:
    if process.process.poll() is not None:
        raise RuntimeError("redis-server exited:\n" + "".join(process.log[-20:]))
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.ConnectionError:
        return False


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A private `redis-server` (no persistence) on a free port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not on PATH (or pass --redis-url)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ub-bench-redis-") as directory:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with _managed([*args, "--dir", directory]) as process:
            wait_until(lambda: _redis_answers(port, process), f"redis-server on port {port}")
            yield f"redis://127.0.0.1:{port}/0"


_LISTENING = re.compile(r"listening on [^ ]+:(\d+)")


@contextlib.contextmanager
def frontend_process(redis_url: str) -> Iterator[tuple[str, int]]:
    """`python -m bridge_server` as its own OS process; yields (target, pid)."""
    args = [sys.executable, "-m", "bridge_server", "--host", "127.0.0.1", "--port", "0"]
    # INFO: the "listening on host:port" line is how we learn the ephemeral port.
    args += ["--redis-url", redis_url, "--log-level", "INFO"]
    with _managed(args, _clean_env()) as process:
        port = int(process.wait_for_line(_LISTENING).group(1))
        yield f"127.0.0.1:{port}", process.pid


@contextlib.contextmanager
def grpc_echo_process() -> Iterator[tuple[str, int]]:
    """The bare grpc.aio echo/push server (`benchmarks._echo_server`); yields (target, pid)."""
    args = [sys.executable, "-m", "benchmarks._echo_server"]
    with _managed(args, _clean_env()) as process:
        port = int(process.wait_for_line(_LISTENING).group(1))
        yield f"127.0.0.1:{port}", process.pid


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
        with _managed(args) as process:
            wait_until(lambda: _etcd_answers(client_port), f"etcd on port {client_port}")
            if process.process.poll() is not None:
                raise RuntimeError("etcd exited:\n" + "".join(process.log[-20:]))
            yield f"127.0.0.1:{client_port}"
