"""One frontend: the gRPC server, its store, event hub and health monitor, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge_server.auth import TokenAuthInterceptor, parse_tokens
from bridge_server.config import Settings
from bridge_server.fanout import EventHub, QueueBudget
from bridge_server.handlers import add_servicer
from bridge_server.health import SERVICE_NAME, HealthMonitor
from bridge_server.metrics import Metrics
from bridge_server.scopes import AccessFileError, Keyring, load_access_file
from bridge_server.servicer import BridgeServicer
from bridge_server.storage import connect_storage, describe_storage
from bridge_server.store import VariableStore
from bridge_server.stream_limits import StreamSlots
from unified_bridge.proto import unified_bridge_pb2 as pb

__all__ = ["SERVICE_NAME", "BridgeServer", "serve", "server_options"]

log = logging.getLogger(__name__)


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """The gRPC server's channel arguments (the benchmark's floor server uses the same)."""
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


class BridgeServer:
    """Start with `await start()` (returns the bound port), stop with `await stop()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = connect_storage(settings)
        self.store = VariableStore(self.redis, settings)
        budget = QueueBudget(
            settings.max_watch_queue, settings.max_watch_queue_bytes, settings.max_watch_buffer_bytes
        )
        self.hub = EventHub(self.redis, budget, settings.redis_timeout_seconds)
        self.metrics = Metrics()
        self.metrics.follow_watch_queues(lambda: (budget.total_bytes, budget.overflows))
        self.health = HealthMonitor(
            self.redis, settings.health_check_interval_seconds, settings.redis_timeout_seconds, self.metrics
        )
        keyring = self._keyring()
        self._auth = TokenAuthInterceptor(keyring) if keyring else None
        self._server = grpc.aio.server(
            options=server_options(settings), interceptors=[self._auth] if self._auth else []
        )
        slots = StreamSlots(settings.max_watch_streams, settings.max_watch_streams_per_connection)
        servicer = BridgeServicer(self.store, self.hub, self.metrics, lambda: self.health.refusal, slots)
        add_servicer(servicer, self._server, self._current_keyring if self._auth else None)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, self._server)
        reflection.enable_server_reflection(
            (pb.DESCRIPTOR.services_by_name["UnifiedBridge"].full_name, reflection.SERVICE_NAME),
            self._server,
        )
        self.port = 0
        self.metrics_port = 0
        self._stopped = asyncio.Event()

    def _keyring(self) -> Keyring:
        """The admin tokens of --auth-tokens and the scoped ones of --auth-file (AccessFileError)."""
        scoped = load_access_file(self.settings.auth_file) if self.settings.auth_file else None
        return Keyring.of(parse_tokens(self.settings.auth_tokens), scoped)

    def _current_keyring(self) -> Keyring:
        assert self._auth is not None
        return self._auth.keyring

    def reload_access(self) -> None:
        """Read --auth-file again (on SIGHUP); a file that cannot be used leaves the rules as they were."""
        if self._auth is None or not self.settings.auth_file:
            log.warning("SIGHUP: no --auth-file to reload")
            return
        try:
            keyring = self._keyring()
        except AccessFileError as exc:
            log.error("access rules NOT reloaded, the previous ones stay in force: %s", exc)
            return
        self._auth.keyring = keyring
        log.info("access rules reloaded from %s: %d tokens", self.settings.auth_file, len(keyring.entries))

    async def start(self) -> int:
        address = f"{self.settings.host}:{self.settings.port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError:  # grpc's way of saying the bind failed
            self.port = 0
        if self.port == 0:
            raise OSError("the port is in use, or the address is not this host's")
        try:
            await self.store.preload_scripts()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # Not fatal: health says NOT_SERVING, and scripts load on first use once Redis is back.
            log.warning("could not load the Lua scripts into Redis yet (%s)", exc)
        await self.health.start()
        await self._server.start()
        if self.settings.metrics_port:
            self.metrics_port = self.metrics.serve(self.settings.host, self.settings.metrics_port)
            log.info("metrics on http://%s:%d/metrics", self.settings.host, self.metrics_port)
        log.info(
            "Unified Bridge frontend listening on %s:%d, storage: %s",
            self.settings.host,
            self.port,
            describe_storage(self.settings),
        )
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls, end watch streams cleanly, let in-flight calls finish."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        await self.health.stop()
        self.hub.end_all_streams()
        await self._server.stop(grace)
        await self.hub.close()
        self.metrics.stop()
        await self.redis.aclose()
        log.info("frontend stopped")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
        await self._server.wait_for_termination()


async def serve(settings: Settings) -> None:
    """Run a frontend until SIGTERM or SIGINT, then shut down gracefully."""
    server = BridgeServer(settings)
    await server.start()
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    loop.add_signal_handler(signal.SIGHUP, server.reload_access)
    await stop_requested.wait()
    log.info("shutdown requested: finishing in-flight calls (grace %.1f s)", settings.shutdown_grace_seconds)
    await server.stop()
