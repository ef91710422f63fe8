"""One frontend: the gRPC server, its store, event hub and health monitor, started and stopped together."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import ssl
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge_server.auth import TokenAuthInterceptor, parse_tokens
from bridge_server.config import Settings
from bridge_server.fanout import EventHub, QueueBudget
from bridge_server.generic_handlers import GenericHandlersOnly
from bridge_server.handlers import add_servicer
from bridge_server.health import SERVICE_NAME, HealthMonitor
from bridge_server.metrics import Metrics
from bridge_server.scopes import AccessFileError, Keyring, load_access_file
from bridge_server.servicer import BridgeServicer
from bridge_server.storage import connect_storage, describe_storage
from bridge_server.store import VariableStore
from bridge_server.stream_limits import StreamSlots
from unified_bridge.proto import unified_bridge_pb2 as pb

__all__ = [
    "SERVICE_NAME",
    "BridgeServer",
    "TlsFileError",
    "describe_protection",
    "is_loopback",
    "serve",
    "server_credentials",
    "server_options",
    "unprotected_exposure",
]

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
        self._credentials = server_credentials(settings)  # first: a bad TLS file fails before anything starts
        self.redis = connect_storage(settings)
        self.store = VariableStore(self.redis, settings)
        budget = QueueBudget(
            settings.max_watch_queue, settings.max_watch_queue_bytes, settings.max_watch_buffer_bytes
        )
        self.hub = EventHub(
            self.redis,
            budget,
            settings.redis_timeout_seconds,
            settings.watch_idle_check_seconds,
            settings.watch_own_writes_flush_seconds,
        )
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
        generic_only: Any = GenericHandlersOnly(self._server)  # the generated functions are untyped
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, generic_only)
        # What enable_server_reflection adds for a grpc.aio server, through the same view.
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(  # type: ignore[attr-defined]  # exported, not in the stubs
                (pb.DESCRIPTOR.services_by_name["UnifiedBridge"].full_name, reflection.SERVICE_NAME)
            ),
            generic_only,
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
            if self._credentials is None:
                self.port = self._server.add_insecure_port(address)
            else:  # health and reflection share the port, so they are behind TLS too
                self.port = self._server.add_secure_port(address, self._credentials)
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
            "Unified Bridge frontend listening on %s:%d, storage: %s, %s",
            self.settings.host,
            self.port,
            describe_storage(self.settings),
            describe_protection(self.settings),
        )
        if unprotected_exposure(self.settings):
            log.warning(
                "listening on %s with neither authentication nor TLS: whoever reaches this port can "
                "read and change every session (set --auth-tokens or --auth-file, and "
                "--tls-cert/--tls-key, or listen on 127.0.0.1)",
                self.settings.host,
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
        # Closing a connection schedules its socket's release on the loop: let that run before the
        # loop may stop (else the socket is left to the garbage collector, with a ResourceWarning).
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log.info("frontend stopped")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
        await self._server.wait_for_termination()


# TLS and the startup report of how the frontend is protected.


class TlsFileError(ValueError):
    """A TLS file named in the settings cannot be read, or is not a usable PEM certificate or key."""


def _read_tls_file(flag: str, path: str, marker: bytes) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsFileError(f"{flag} {path!r} cannot be read: {exc.strerror or exc}") from exc
    if marker not in data:
        raise TlsFileError(f"{flag} {path!r} is not PEM: it has no {marker.decode()!r} line")
    return data


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The frontend's TLS credentials (None: plaintext), checked here so that a bad file is one clear
    error at startup rather than a failed bind or a failed handshake later."""
    if not settings.uses_tls:
        return None
    cert = _read_tls_file("--tls-cert", settings.tls_cert, b"-----BEGIN CERTIFICATE-----")
    key = _read_tls_file("--tls-key", settings.tls_key, b"PRIVATE KEY-----")
    if b"ENCRYPTED PRIVATE KEY-----" in key or b"Proc-Type: 4,ENCRYPTED" in key:
        raise TlsFileError(f"--tls-key {settings.tls_key!r} is encrypted: gRPC needs an unencrypted key")
    client_ca = None
    if settings.tls_client_ca:
        client_ca = _read_tls_file("--tls-client-ca", settings.tls_client_ca, b"-----BEGIN CERTIFICATE-----")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key, password="")
    except ssl.SSLError as exc:
        problem = "the key does not belong to the certificate" if exc.reason == "KEY_VALUES_MISMATCH" else exc
        raise TlsFileError(
            f"--tls-cert {settings.tls_cert!r} and --tls-key {settings.tls_key!r} are not usable: {problem}"
        ) from exc
    if client_ca is not None:
        try:
            context.load_verify_locations(cadata=client_ca.decode("ascii", "replace"))
        except ssl.SSLError as exc:
            raise TlsFileError(f"--tls-client-ca {settings.tls_client_ca!r} is not usable: {exc}") from exc
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def is_loopback(host: str) -> bool:
    """Is ``host`` reachable from this machine only (127.0.0.0/8, ::1, localhost)?"""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def unprotected_exposure(settings: Settings) -> bool:
    """Listening beyond this machine with neither bearer tokens nor TLS: worth a warning."""
    authenticated = settings.auth_tokens or settings.auth_file
    return not authenticated and not settings.uses_tls and not is_loopback(settings.host)


def describe_protection(settings: Settings) -> str:
    """``auth: off, TLS: on`` and the like, for the startup line (never a token or a key)."""
    kinds = [
        *(["bearer tokens"] if settings.auth_tokens else []),
        *(["scoped tokens"] if settings.auth_file else []),
    ]
    auth = f"on ({', '.join(kinds)})" if kinds else "off"
    if settings.tls_client_ca:
        tls = "on, mutual (client certificates required)"
    else:
        tls = "on" if settings.uses_tls else "off"
    return f"auth: {auth}, TLS: {tls}"


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
