"""The global options (where the frontend is, how to reach it) and the client they open.

Every global option can also come from the environment: ``--target`` from ``BRIDGE_TARGET``,
``--token`` from ``BRIDGE_TOKEN``, ``--timeout`` from ``BRIDGE_TIMEOUT``, ``--tls`` from ``BRIDGE_TLS``,
``--tls-ca`` / ``--tls-cert`` / ``--tls-key`` from ``BRIDGE_TLS_CA`` / ``BRIDGE_TLS_CERT`` /
``BRIDGE_TLS_KEY``. A flag on the command line wins over the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc

from unified_bridge import BridgeClient, connect
from unified_bridge.cli._errors import CliError, ExitCode

__all__ = ["DEFAULT_TARGET", "ConnectOptions", "global_options", "pass_options"]

DEFAULT_TARGET = "127.0.0.1:50051"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    target: str = DEFAULT_TARGET
    token: str | None = None
    timeout: float = 10.0
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.tls_ca is not None or self.tls_cert is not None

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials (None: plaintext): the CA file, else the system's roots, and a client
        certificate when both its files are given."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise CliError("--tls-cert and --tls-key go together: give both or neither", ExitCode.USAGE)
        if not self.uses_tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.tls_ca, "--tls-ca"),
            private_key=_read(self.tls_key, "--tls-key"),
            certificate_chain=_read(self.tls_cert, "--tls-cert"),
        )

    def connect(self) -> BridgeClient:
        """A client on the frontends of ``--target`` (channels open on the first call)."""
        return connect(self.target, timeout=self.timeout, credentials=self.credentials(), token=self.token)


def _read(path: Path | None, option: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {option} file {path}: {exc.strerror}", ExitCode.USAGE) from None


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _option(*names: str, **settings: Any) -> Callable[[F], F]:
    return click.option(*names, show_envvar=True, **settings)


_GLOBAL_OPTIONS: tuple[Callable[[F], F], ...] = (
    _option(
        "--target",
        envvar="BRIDGE_TARGET",
        default=DEFAULT_TARGET,
        show_default=True,
        help="Frontend 'host:port', or several as 'h1:port,h2:port'.",
    ),
    _option("--token", envvar="BRIDGE_TOKEN", help="Bearer token for frontends started with --auth-tokens."),
    _option(
        "--timeout",
        envvar="BRIDGE_TIMEOUT",
        type=click.FloatRange(min=0, min_open=True),
        default=10.0,
        show_default=True,
        help="Deadline of each call in seconds, retries included.",
    ),
    _option("--tls", envvar="BRIDGE_TLS", is_flag=True, help="Use TLS (the system's CA roots)."),
    _option("--tls-ca", envvar="BRIDGE_TLS_CA", type=_FILE, help="CA certificates (PEM); implies --tls."),
    _option(
        "--tls-cert", envvar="BRIDGE_TLS_CERT", type=_FILE, help="Client certificate (PEM); implies --tls."
    ),
    _option("--tls-key", envvar="BRIDGE_TLS_KEY", type=_FILE, help="Client private key (PEM)."),
)


def global_options(command: F) -> F:
    """Decorate the top-level group with every connection option (each shows its variable in --help)."""
    for option in reversed(_GLOBAL_OPTIONS):
        command = option(command)
    return command


def pass_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the command the :class:`ConnectOptions` the top-level group stored."""
    return click.pass_obj(command)
