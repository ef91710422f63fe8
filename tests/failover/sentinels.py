"""A private Sentinel-managed Redis for failover tests: a master, one replica, three Sentinels.

Every server is its own process on a free port of 127.0.0.1 with its files in a temporary directory.
The Sentinels run as `redis-server <conf> --sentinel` (the one binary: no redis-sentinel package).
They call the master down after DOWN_AFTER_MS without an answer and need two of three to agree.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import redis

from bridge_server.testing import RedisServer, free_port, wait_until

MASTER_NAME = "ub-failover"
DOWN_AFTER_MS = 1000
_SENTINELS = 3
_QUORUM = 2


def sentinel_tools_available() -> bool:
    return shutil.which("redis-server") is not None


class SentinelGroup:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.master = RedisServer(self._dir("master"))
        self.replica = RedisServer(self._dir("replica"))
        self.sentinel_ports = [free_port() for _ in range(_SENTINELS)]
        self._sentinels: list[subprocess.Popen[bytes]] = []

    def _dir(self, name: str) -> Path:
        path = self.directory / name
        path.mkdir()
        return path

    @property
    def sentinels(self) -> str:
        """The value of --redis-sentinels."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> SentinelGroup:
        self.master.start()
        self.replica.extra_args = ("--replicaof", "127.0.0.1", str(self.master.port))
        self.replica.start()
        wait_until(lambda: _link_is_up(self.replica.port), "the replica to sync with the master")
        binary = shutil.which("redis-server")
        assert binary is not None
        for index, port in enumerate(self.sentinel_ports):
            directory = self._dir(f"sentinel-{index}")
            conf = directory / "sentinel.conf"  # a Sentinel rewrites its file: one each
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} {_QUORUM}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            )
            self._sentinels.append(
                subprocess.Popen(
                    [binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        wait_until(self._sentinels_agree, "the Sentinels to know the replica and each other", timeout=60)
        return self

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            state = _master_state(port)
            if state is None or state["num-other-sentinels"] < _SENTINELS - 1 or state["num-slaves"] < 1:
                return False
        return True

    def master_port(self) -> int | None:
        """The master's port as the first Sentinel that answers names it."""
        for port in self.sentinel_ports:
            state = _master_state(port)
            if state is not None:
                return int(state["port"])
        return None

    def stop(self) -> None:
        for sentinel in self._sentinels:
            sentinel.terminate()
        for sentinel in self._sentinels:
            try:
                sentinel.wait(10)
            except subprocess.TimeoutExpired:
                sentinel.kill()
                sentinel.wait()
        self.replica.stop()
        self.master.stop()


def _link_is_up(port: int) -> bool:
    with redis.Redis(port=port, socket_timeout=1) as client:
        return bool(client.info("replication").get("master_link_status") == "up")


def _master_state(sentinel_port: int) -> dict[str, object] | None:
    try:
        with redis.Redis(port=sentinel_port, socket_timeout=1) as client:
            masters = client.sentinel_masters()
    except redis.ConnectionError:
        return None
    state: dict[str, object] | None = masters.get(MASTER_NAME)
    return state


@contextlib.contextmanager
def sentinel_group(directory: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(directory)
    try:
        yield group.start()
    finally:
        group.stop()
