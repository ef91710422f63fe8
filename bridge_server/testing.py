"""Real Redis and real frontends for integration suites: private processes on free ports.

This project's tests and benchmark suite start their servers with these, and so can any suite that
tests a program against the bridge::

    from bridge_server.testing import FrontendProcess, private_redis

    with private_redis() as redis_server, FrontendProcess(redis_server.url) as frontend:
        ...  # connect to frontend.target

Everything listens on 127.0.0.1 on a port the OS picked, keeps its files in a temporary directory,
and is stopped when its context ends. Where a Docker engine answers (`docker_answers`),
`container_redis` runs Redis in a container instead (testcontainers, installed separately).
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
from types import TracebackType
from typing import IO

import redis

__all__ = [
    "REDIS_IMAGE",
    "FrontendProcess",
    "LoggedProcess",
    "RedisServer",
    "container_redis",
    "docker_answers",
    "free_port",
    "private_redis",
    "wait_until",
    "without_bridge_settings",
]

_START_TIMEOUT = 30.0
REDIS_IMAGE = "redis:7.2"  # the version deploy/ runs
_LISTENING = re.compile(r"listening on [^ ]+:(\d+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = _START_TIMEOUT) -> None:
    """Poll `predicate` until it is true; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.02)


def without_bridge_settings() -> dict[str, str]:
    """This process's environment without BRIDGE_* variables, so a child gets only its flags."""
    return {key: value for key, value in os.environ.items() if not key.startswith("BRIDGE_")}


class LoggedProcess:
    """A child process whose stderr is read on a thread (so it never blocks on a full pipe)."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self.log: list[str] = []
        self._lines = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self, stream: IO[str] | None) -> None:
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

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM (a graceful stop); returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._close_log()
        return code

    def kill(self) -> None:
        """SIGKILL: no goodbye."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> LoggedProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.terminate()


class FrontendProcess(LoggedProcess):
    """`python -m bridge_server` as its own OS process on a free port (the embedded store if no URL).

    `extra_args` are more flags, e.g. a TLS frontend (connect with `root_certificates=`)::

        FrontendProcess(url, "--tls-cert", cert_path, "--tls-key", key_path, "--tls-client-ca", ca_path)
    """

    def __init__(self, redis_url: str | None, *extra_args: str) -> None:
        args = [sys.executable, "-m", "bridge_server", "--host", "127.0.0.1", "--port", "0", *extra_args]
        if redis_url:
            args += ["--redis-url", redis_url]
        super().__init__(args, without_bridge_settings())
        # The "listening on host:port" log line is how the ephemeral port is learned.
        self.port = int(self.wait_for_line(_LISTENING).group(1))
        self.target = f"127.0.0.1:{self.port}"

    def __enter__(self) -> FrontendProcess:
        return self


class RedisServer:
    """A private `redis-server` that may be stopped, crashed and started again on the same port."""

    def __init__(self, directory: Path, *extra_args: str, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.directory), *self.extra_args]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        """SIGTERM: Redis shuts down cleanly (and flushes its append-only file)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def crash(self) -> None:
        """SIGKILL: no shutdown save, no goodbye; only what was on disk survives."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self._process.returncode}")
        try:
            with redis.Redis(port=self.port, socket_timeout=0.5) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False


@contextlib.contextmanager
def private_redis(*extra_args: str) -> Iterator[RedisServer]:
    """A started `redis-server` (no persistence unless `extra_args` ask) in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="ub-redis-") as directory:
        server = RedisServer(Path(directory), *extra_args).start()
        try:
            yield server
        finally:
            server.stop()


def docker_answers() -> bool:
    """Whether a Docker engine answers a ping (checked on the raw socket: docker-py leaks one)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a remote engine: let testcontainers find out
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(host.removeprefix("unix://"))
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except OSError:
        return False


@contextlib.contextmanager
def container_redis(image: str = REDIS_IMAGE) -> Iterator[str]:
    """The URL of a Redis in a container, removed when the context ends (needs `testcontainers[redis]`)."""
    from testcontainers.redis import RedisContainer

    with RedisContainer(image) as container:
        host = container.get_container_host_ip()
        yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
