"""Channels: one round-robin channel for unary calls, one channel per frontend for watch streams.

Unary calls go through a single channel whose ``round_robin`` load-balancing policy spreads them over
every frontend and skips the ones that are down. A watch stream is long-lived, so it is pinned to one
frontend on purpose (its own channel); when that stream is lost, the follower moves to the next
frontend in the list.

Over TLS the round-robin channel names addresses, not a host, so it verifies every frontend's
certificate against the first target's host name (``grpc.default_authority``; the caller's own
``options`` may set another).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio

from unified_bridge._auth import async_token_interceptors, with_token
from unified_bridge.errors import ValidationError
from unified_bridge.proto import unified_bridge_pb2_grpc as pb2_grpc

__all__ = ["AsyncTransport", "SyncTransport", "channel_credentials", "parse_targets", "round_robin_target"]

_LB_OPTIONS: list[tuple[str, Any]] = [("grpc.lb_policy_name", "round_robin")]


def parse_targets(target: str | Sequence[str]) -> list[str]:
    """``"h1:50051,h2:50051"`` or ``["h1:50051", "h2:50051"]`` -> ``["h1:50051", "h2:50051"]``."""
    parts = target.split(",") if isinstance(target, str) else list(target)
    targets = [p.strip() for p in parts if p.strip()]
    if not targets:
        raise ValidationError("No target given: expected 'host:port' or 'h1:port,h2:port'")
    for t in targets:
        host, sep, port = t.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValidationError(f"Bad target {t!r}: expected 'host:port'")
    return targets


def _split(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def _resolve(host: str, port: int) -> list[str]:
    """IP addresses of ``host`` (a literal passes through); resolved once, when the client connects."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    v4 = [str(info[4][0]) for info in infos if info[0] == socket.AF_INET]
    return list(dict.fromkeys(v4 or [str(info[4][0]) for info in infos]))


def round_robin_target(targets: Sequence[str]) -> str:
    """One gRPC target naming every frontend, e.g. ``ipv4:10.0.0.1:50051,10.0.0.2:50051``.

    A single ``host:port`` is passed as is (grpc's DNS resolver balances over its addresses).
    """
    if len(targets) == 1:
        return targets[0]
    addresses: list[str] = []
    for target in targets:
        host, port = _split(target)
        addresses.extend(f"{ip}:{port}" if ":" not in ip else f"[{ip}]:{port}" for ip in _resolve(host, port))
    if all(a.startswith("[") for a in addresses):
        return "ipv6:" + ",".join(addresses)
    v4 = [a for a in addresses if not a.startswith("[")]
    return "ipv4:" + ",".join(v4)


def _pem(name: str, value: bytes | None) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, bytes):
        raise ValidationError(
            f"{name} must be PEM bytes (e.g. Path('ca.pem').read_bytes()), not {type(value).__name__}"
        )
    if b"-----BEGIN " not in value:
        raise ValidationError(f"{name} is not PEM: it has no '-----BEGIN ...' line")
    return value


def channel_credentials(
    credentials: grpc.ChannelCredentials | None,
    *,
    tls: bool = False,
    root_certificates: bytes | None = None,
    client_cert: bytes | None = None,
    client_key: bytes | None = None,
) -> grpc.ChannelCredentials | None:
    """A client's channel credentials: ``credentials`` as given, or TLS from the options (None: plaintext).

    Any of ``root_certificates`` (PEM of the CAs to trust; None: the system's), ``client_cert`` and
    ``client_key`` (mutual TLS, both or neither) implies ``tls``.
    """
    pem = {
        "root_certificates": _pem("root_certificates", root_certificates),
        "client_cert": _pem("client_cert", client_cert),
        "client_key": _pem("client_key", client_key),
    }
    if not tls and all(value is None for value in pem.values()):
        return credentials
    if credentials is not None:
        raise ValidationError(
            "pass either credentials= or the TLS options (tls, root_certificates, client_cert, "
            "client_key), not both"
        )
    if (client_cert is None) != (client_key is None):
        raise ValidationError("client_cert and client_key go together: mutual TLS needs both")
    return grpc.ssl_channel_credentials(
        root_certificates=pem["root_certificates"],
        private_key=pem["client_key"],
        certificate_chain=pem["client_cert"],
    )


#: The largest message a client sends or accepts by default: the frontend's --max-message-bytes default.
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def _sets_authority(options: Sequence[tuple[str, Any]]) -> bool:
    return any(key in ("grpc.default_authority", "grpc.ssl_target_name_override") for key, _ in options)


class _Transport:
    """What both transports share: targets, the round-robin stub, and one watch stub per frontend.

    Subclasses only open and close channels (blocking or ``grpc.aio``); a borrowed stub or channel
    is used as given and never closed here.
    """

    def __init__(
        self,
        targets: Sequence[str],
        options: Sequence[tuple[str, Any]],
        credentials: grpc.ChannelCredentials | None,
        stub: Any,
        channel: Any,
    ) -> None:
        # The frontend's own message limit (--max-message-bytes, 8 MiB) is the default here too: with
        # grpc's 4 MiB a response or watch event the frontend may send would fail on this side. The
        # caller's options come first: grpc takes the first value of a repeated option.
        self._options = [
            *options,
            ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ]
        self._credentials = credentials
        self._owned: list[Any] = []
        self._watch: dict[int, Any] = {}
        if stub is not None or channel is not None:
            self.stub = stub if stub is not None else pb2_grpc.UnifiedBridgeStub(channel)
            self.targets = ["(given channel)"]
            return
        self.targets = list(targets)
        extra = list(_LB_OPTIONS)
        if credentials is not None and len(self.targets) > 1 and not _sets_authority(options):
            extra.append(("grpc.default_authority", self.targets[0]))
        self.stub = pb2_grpc.UnifiedBridgeStub(self._open(round_robin_target(self.targets), extra))

    def _open(self, target: str, extra: list[tuple[str, Any]]) -> Any:
        raise NotImplementedError

    @property
    def watch_target_names(self) -> list[str]:
        return self.targets

    def watch_stub(self, index: int) -> Any:
        if len(self.targets) == 1:
            return self.stub
        if index not in self._watch:
            self._watch[index] = pb2_grpc.UnifiedBridgeStub(self._open(self.targets[index], []))
        return self._watch[index]


class SyncTransport(_Transport):
    """The channels of a sync client (or a borrowed stub or channel)."""

    def __init__(
        self,
        targets: Sequence[str] = (),
        *,
        options: Sequence[tuple[str, Any]] = (),
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
        stub: Any = None,
        channel: grpc.Channel | None = None,
    ) -> None:
        self._token = token
        super().__init__(targets, options, credentials, stub, channel)

    def _open(self, target: str, extra: list[tuple[str, Any]]) -> grpc.Channel:
        options = [*extra, *self._options]
        if self._credentials is not None:
            channel = grpc.secure_channel(target, self._credentials, options=options)
        else:
            channel = grpc.insecure_channel(target, options=options)
        self._owned.append(channel)
        return with_token(channel, self._token)

    def close(self) -> None:
        for channel in self._owned:
            channel.close()
        self._owned.clear()
        self._watch.clear()


class AsyncTransport(_Transport):
    """The ``grpc.aio`` channels of an async client (or a borrowed stub or channel)."""

    def __init__(
        self,
        targets: Sequence[str] = (),
        *,
        options: Sequence[tuple[str, Any]] = (),
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
        stub: Any = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._interceptors = async_token_interceptors(token)
        super().__init__(targets, options, credentials, stub, channel)

    def _open(self, target: str, extra: list[tuple[str, Any]]) -> grpc.aio.Channel:
        options = [*extra, *self._options]
        interceptors = self._interceptors
        if self._credentials is not None:
            channel = grpc.aio.secure_channel(
                target, self._credentials, options=options, interceptors=interceptors
            )
        else:
            channel = grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
        self._owned.append(channel)
        return channel

    async def close(self) -> None:
        for channel in self._owned:
            await channel.close(None)
        self._owned.clear()
        self._watch.clear()
