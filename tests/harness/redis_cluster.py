"""A private Redis Cluster for tests: three primaries on free ports, in a temporary directory.

`private_redis_cluster_nodes` also gives each primary replicas and a short node timeout (a primary
that stops answering for a second is failed over), for the failover tests.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import redis

from bridge_server.testing import RedisServer, wait_until

_BUS_OFFSET = 10_000  # Redis Cluster's bus listens on port + 10000
_CLUSTER_NODE_ARGS = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_port() -> int:
    """A free port whose cluster bus port is free too."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + _BUS_OFFSET < 65536 and _port_is_free(port + _BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def cluster_tools_available() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def _cluster_is_ok(port: int) -> bool:
    with redis.Redis(port=port, socket_timeout=1) as client:
        info = client.execute_command("CLUSTER INFO")  # redis-py parses it into a dict
    return bool(info.get("cluster_state") == "ok")


def _replicas_are_linked(port: int) -> bool:
    with redis.Redis(port=port, socket_timeout=1) as client:
        info = client.info("replication")
    return info["role"] == "master" or info.get("master_link_status") == "up"


@contextlib.contextmanager
def private_redis_cluster(primaries: int = 3) -> Iterator[str]:
    """Yields the URL of one node; clients discover the rest."""
    with private_redis_cluster_nodes(primaries) as nodes:
        yield f"redis://127.0.0.1:{nodes[0].port}/0"


@contextlib.contextmanager
def private_redis_cluster_nodes(primaries: int = 3, replicas: int = 0) -> Iterator[list[RedisServer]]:
    """Yields the nodes, primaries and replicas (ask a node its role: a failover changes them)."""
    extra = ("--cluster-node-timeout", "1000") if replicas else ()
    with tempfile.TemporaryDirectory(prefix="ub-cluster-") as directory:
        nodes: list[RedisServer] = []
        try:
            for index in range(primaries * (1 + replicas)):
                node_dir = Path(directory) / f"node-{index}"
                node_dir.mkdir()
                node = RedisServer(node_dir, *_CLUSTER_NODE_ARGS, *extra, port=_cluster_port())
                nodes.append(node.start())
            addresses = [f"127.0.0.1:{n.port}" for n in nodes]
            create = ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", str(replicas)]
            subprocess.run(
                [*create, "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            for node in nodes:
                wait_until(lambda node=node: _cluster_is_ok(node.port), f"cluster node {node.port} to be ok")
                wait_until(lambda node=node: _replicas_are_linked(node.port), f"replica {node.port} to sync")
            yield nodes
        finally:
            for node in nodes:
                node.stop()
