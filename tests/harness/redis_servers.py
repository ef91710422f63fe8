"""Real Redis for tests, picked in this order:

1. `BRIDGE_TEST_REDIS_URL`, when set (an existing server; tests use unique session ids);
2. testcontainers, when a Docker engine answers;
3. a private `redis-server` on a free port in a temporary directory (the usual case);
4. fakeredis's TCP server, only when none of these exists: tests marked `real_redis` are then
   skipped, saying why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
from collections.abc import Iterator

from bridge_server.testing import free_port, private_redis

log = logging.getLogger(__name__)

REDIS_URL_VARIABLE = "BRIDGE_TEST_REDIS_URL"


@contextlib.contextmanager
def _container_redis() -> Iterator[str]:
    from testcontainers.redis import RedisContainer

    image = f"redis:{os.environ.get('BRIDGE_TEST_REDIS_VERSION', '7.2')}"
    with RedisContainer(image) as container:
        host = container.get_container_host_ip()
        yield f"redis://{host}:{container.get_exposed_port(6379)}/0"


def _docker_answers() -> bool:
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
def _fake_tcp_redis() -> Iterator[str]:
    from fakeredis import TcpFakeServer

    port = free_port()
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def test_redis() -> Iterator[tuple[str, bool]]:
    """(url, is_real_redis) of the Redis the test session uses."""
    if url := os.environ.get(REDIS_URL_VARIABLE):
        log.info("tests use the Redis at %s", url)
        yield url, True
    elif _docker_answers():
        with _container_redis() as url:
            yield url, True
    elif shutil.which("redis-server"):
        with private_redis() as server:
            yield server.url, True
    else:
        log.warning("no Redis available: falling back to fakeredis's TCP server; real_redis tests skip")
        with _fake_tcp_redis() as url:
            yield url, False
