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
import threading
from collections.abc import Iterator

from bridge_server.testing import container_redis, docker_answers, free_port, private_redis

log = logging.getLogger(__name__)

REDIS_URL_VARIABLE = "BRIDGE_TEST_REDIS_URL"


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
    elif docker_answers():
        with container_redis(f"redis:{os.environ.get('BRIDGE_TEST_REDIS_VERSION', '7.2')}") as url:
            yield url, True
    elif shutil.which("redis-server"):
        with private_redis() as server:
            yield server.url, True
    else:
        log.warning("no Redis available: falling back to fakeredis's TCP server; real_redis tests skip")
        with _fake_tcp_redis() as url:
            yield url, False
