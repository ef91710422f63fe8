"""Settings of a frontend: one flat, typed dataclass, built from defaults, `BRIDGE_*` variables and flags."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from bridge_server.auth import parse_tokens
from bridge_server.logs import LOG_FORMATS
from bridge_server.scopes import load_access_file
from unified_bridge._rules import SessionLimits
from unified_bridge._transport import DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["HELP", "Settings", "redacted_url", "sentinel_addresses"]

_ENV_PREFIX = "BRIDGE_"
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
# The per-session limits have one set of defaults, shared with the SDK's local backend.
_SESSION = SessionLimits()


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything a frontend can be told. Every limit is explicit and has a default."""

    host: str = "0.0.0.0"
    port: int = 50051
    # None: run on the embedded in-process store (fakeredis), for trying the bridge with nothing installed.
    redis_url: str | None = None
    # The URL names one node of a Redis Cluster (the others are discovered from it).
    redis_cluster: bool = False
    # Redis Sentinel: the Sentinels ("host:port,host:port") and the name they know the master by. The
    # master's address is asked of them on every (re)connect; a --redis-url then only gives the
    # master's user, password, database and scheme (its host and port are not used).
    redis_sentinels: str = ""
    redis_sentinel_master: str = ""
    redis_sentinel_password: str = dataclasses.field(default="", repr=False)
    # A write is acknowledged only once this many replicas have it (WAIT); 0: asynchronous replication.
    # Past the timeout the call fails UNAVAILABLE (applied on the master, maybe lost by a failover).
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 1000
    key_prefix: str = "ub"
    # Comma-separated bearer tokens; empty: no authentication. Kept out of repr so it is never logged.
    auth_tokens: str = dataclasses.field(default="", repr=False)
    # A TOML file of named tokens with session scopes (bridge_server/scopes.py); reloaded on SIGHUP.
    auth_file: str = ""
    # TLS: PEM paths of the frontend's certificate (chain) and key, both or neither; empty: plaintext.
    # With a client CA, clients must present a certificate it signed (mutual TLS).
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    log_level: str = "INFO"
    # "text" for people, "json" for one JSON object per line.
    log_format: str = "text"
    # Prometheus /metrics over HTTP on this port; 0 leaves it off (several frontends may share a host).
    metrics_port: int = 0

    default_ttl_seconds: int = 3600
    # Reads refresh a session's TTL at most this often (and at least four times per TTL).
    activity_refresh_seconds: float = 10.0
    max_ttl_seconds: int = 7 * 24 * 3600
    max_value_bytes: int = _SESSION.max_value_bytes
    max_variables_per_session: int = _SESSION.max_variables
    max_batch_size: int = _SESSION.max_batch_size
    max_name_length: int = _SESSION.max_name_length
    max_session_id_length: int = 128
    max_metadata_entries: int = _SESSION.max_metadata_entries
    max_metadata_bytes: int = _SESSION.max_metadata_bytes
    max_description_length: int = _SESSION.max_description_length
    change_log_length: int = _SESSION.change_log_length
    # What one session's change log may hold in bytes; past it (or past its length) the oldest go.
    change_log_bytes: int = 64 * 1024 * 1024
    # An import of more variables than this is staged in chunks of this many (one script each), so
    # no single script blocks Redis for long; then one short script commits it.
    import_chunk_size: int = 500

    max_watch_queue: int = 10_000
    # Bytes of events queued for one watcher, and for all of a frontend's watchers together; past
    # either, a watcher drops what it has not read and catches up from the change log instead.
    max_watch_queue_bytes: int = 16 * 1024 * 1024
    max_watch_buffer_bytes: int = 256 * 1024 * 1024
    # Open watch streams per frontend, and per client connection; past either: RESOURCE_EXHAUSTED.
    max_watch_streams: int = 10_000
    max_watch_streams_per_connection: int = 1000
    watch_idle_check_seconds: float = 5.0
    # A watcher's own writes (its writer token) are not sent one by one: the next message lists them,
    # or one message after this delay. 0: they are sent in full like any other.
    watch_own_writes_flush_seconds: float = 0.02
    health_check_interval_seconds: float = 1.0
    redis_timeout_seconds: float = 5.0
    # Connections to Redis per frontend (per node on a cluster); past it, commands wait for one.
    redis_max_connections: int = 100
    shutdown_grace_seconds: float = 5.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # the SDK accepts as much by default
    definition_cache_size: int = 100_000
    # Memory for variables read recently, kept by their stored bytes (0: none kept).
    read_cache_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"setting {field.name} must not be negative, got {value}")
        if self.default_ttl_seconds > self.max_ttl_seconds:
            raise ValueError(
                f"default_ttl_seconds ({self.default_ttl_seconds}) is above "
                f"max_ttl_seconds ({self.max_ttl_seconds})"
            )
        flush = self.watch_own_writes_flush_seconds
        if not math.isfinite(flush) or flush > 60:
            raise ValueError(f"watch_own_writes_flush_seconds must be at most 60, got {flush}")
        if self.watch_idle_check_seconds <= 0:
            raise ValueError(f"watch_idle_check_seconds must be above 0, got {self.watch_idle_check_seconds}")
        if self.import_chunk_size < 1:
            raise ValueError(f"import_chunk_size must be at least 1, got {self.import_chunk_size}")
        if self.log_level.upper() not in _LOG_LEVELS:
            raise ValueError(f"log level {self.log_level!r} is not one of {', '.join(_LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log format {self.log_format!r} is not one of {', '.join(LOG_FORMATS)}")
        if self.redis_url is not None and self.redis_url.partition("://")[0] not in _REDIS_SCHEMES:
            raise ValueError(
                f"redis URL {redacted_url(self.redis_url)!r} must start with "
                f"{' or '.join(s + '://' for s in _REDIS_SCHEMES)}"
            )
        self._check_failover_settings()
        if self.auth_tokens and not parse_tokens(self.auth_tokens):
            # Fail closed: a setting meant to turn auth on must never leave the frontend open.
            raise ValueError(
                "auth_tokens (--auth-tokens, BRIDGE_AUTH_TOKENS) is set but holds no usable token"
            )
        if self.auth_file:
            load_access_file(self.auth_file)  # a bad file stops the start (AccessFileError is a ValueError)
        _check_tls_pairing(self.tls_cert, self.tls_key, self.tls_client_ca)
        if self.key_prefix == "" or any(c in self.key_prefix for c in "{}: \t\n*?[]"):
            raise ValueError(f"key prefix {self.key_prefix!r} must be non-empty, without {{}}:*?[] or spaces")

    def _check_failover_settings(self) -> None:
        if bool(self.redis_sentinels) != bool(self.redis_sentinel_master):
            raise ValueError(
                "redis_sentinels (--redis-sentinels) and redis_sentinel_master (--redis-sentinel-master) "
                "go together: the Sentinels' addresses and the name they know the master by"
            )
        if self.redis_sentinels:
            sentinel_addresses(self.redis_sentinels)
            if self.redis_cluster:
                raise ValueError(
                    "redis_sentinels and redis_cluster exclude each other: a cluster fails over itself"
                )
        if self.redis_wait_replicas and (self.uses_embedded_store or self.redis_cluster):
            raise ValueError(
                "redis_wait_replicas (--redis-wait-replicas) needs one Redis with replicas "
                "(--redis-url or --redis-sentinels), not the embedded store or a cluster"
            )
        if self.redis_wait_replicas and self.redis_wait_timeout_ms < 1:
            raise ValueError("redis_wait_timeout_ms must be at least 1 (0 would make WAIT wait forever)")
        if self.redis_wait_replicas and self.redis_wait_timeout_ms >= self.redis_timeout_seconds * 1000:
            raise ValueError(
                f"redis_wait_timeout_ms ({self.redis_wait_timeout_ms}) must be below redis_timeout_seconds "
                f"({self.redis_timeout_seconds} s), or the command times out before WAIT answers"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `BRIDGE_<FIELD>` environment variables, then keyword overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(_ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(field, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def from_args(
        cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Flags win over environment variables, which win over defaults."""
        parser = argparse.ArgumentParser(
            prog="bridge-server",
            description="Unified Bridge gRPC frontend. Every flag can also be set as BRIDGE_<FLAG_NAME>.",
        )
        for field in dataclasses.fields(cls):
            flag = "--" + field.name.replace("_", "-")
            env = f"${_ENV_PREFIX}{field.name.upper()}"
            if isinstance(field.default, bool):
                parser.add_argument(
                    flag, dest=field.name, action="store_const", const=True, default=None,
                    help=f"{HELP[field.name]} ({env})",
                )  # fmt: skip
                continue
            shown = "" if field.default in ("", None) or not field.repr else f"default: {field.default}; "
            parser.add_argument(
                flag,
                dest=field.name,
                type=_field_kind(field),
                default=None,
                metavar=field.name.split("_")[-1].upper(),
                help=f"{HELP[field.name]} ({shown}{env})",
            )
        args = parser.parse_args(argv)
        return cls.from_env(environ, **vars(args))

    @property
    def uses_embedded_store(self) -> bool:
        return not self.redis_url and not self.redis_sentinels

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_cert)


def sentinel_addresses(sentinels: str) -> list[tuple[str, int]]:
    """(host, port) of each Sentinel in "host:port,host:port"; ValueError saying which one is wrong."""
    addresses = []
    for entry in sentinels.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise ValueError(f"Sentinel address {entry.strip()!r} in redis_sentinels is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def _check_tls_pairing(cert: str, key: str, client_ca: str) -> None:
    """Fail closed: a TLS setting given alone must stop the frontend, never leave it plaintext."""
    if bool(cert) != bool(key):
        given, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        raise ValueError(
            f"{given} is set but {missing} is not: TLS needs both "
            "(--tls-cert and --tls-key, or BRIDGE_TLS_CERT and BRIDGE_TLS_KEY)"
        )
    if client_ca and not cert:
        raise ValueError("tls_client_ca (mutual TLS) needs TLS: set --tls-cert and --tls-key too")


#: What each setting means, for `bridge-server --help` (a test checks that every field has one).
HELP: Final[Mapping[str, str]] = MappingProxyType(
    {
        "host": "address to listen on",
        "port": "port to listen on (0: one the system picks)",
        "redis_url": "redis:// or rediss:// URL of the Redis holding the sessions; none: the embedded store",
        "redis_cluster": "the Redis URL names one node of a Redis Cluster; the others are discovered",
        "redis_sentinels": "Sentinels as host:port,host:port; they name the master on every connect",
        "redis_sentinel_master": "the name the Sentinels know the master by",
        "redis_sentinel_password": "password of the Sentinels themselves",
        "redis_wait_replicas": "acknowledge a write once this many replicas have it (WAIT); 0: asynchronous",
        "redis_wait_timeout_ms": "how long a write waits for replicas, then UNAVAILABLE (outcome unknown)",
        "key_prefix": "prefix of every Redis key",
        "auth_tokens": "comma-separated bearer tokens with access to everything; none: no authentication",
        "auth_file": "TOML file of named tokens scoped to sessions (README: Access control); SIGHUP reloads",
        "tls_cert": "PEM certificate (chain) of the frontend; with --tls-key, serve over TLS",
        "tls_key": "PEM private key of --tls-cert",
        "tls_client_ca": "PEM CA that must have signed every client's certificate (mutual TLS)",
        "log_level": "CRITICAL, ERROR, WARNING, INFO or DEBUG",
        "log_format": "text (for people) or json (one object per line)",
        "metrics_port": "port of Prometheus /metrics over HTTP; 0: off",
        "default_ttl_seconds": "TTL of a session created without one",
        "activity_refresh_seconds": "reads and updates refresh a TTL at most this often (and 4 times a TTL)",
        "max_ttl_seconds": "the longest TTL a session may ask for",
        "max_value_bytes": "encoded size of one value",
        "max_variables_per_session": "variables one session may hold",
        "max_batch_size": "items in one GetVariables or SetVariables",
        "max_name_length": "characters in a variable name",
        "max_session_id_length": "characters in a session id",
        "max_metadata_entries": "entries in one metadata map",
        "max_metadata_bytes": "bytes of one metadata map, keys and values together",
        "max_description_length": "characters in a variable's description",
        "change_log_length": "events a session's change log keeps for watchers to resume from",
        "change_log_bytes": "bytes a session's change log may hold; past it (or its length) the oldest go",
        "import_chunk_size": "an ImportSession of more variables is staged in chunks of this many",
        "max_watch_queue": "events queued for one watcher before it goes on from the change log",
        "max_watch_queue_bytes": (
            "memory one watcher's queue may hold before it goes on from the change log (an event "
            "counts three times its size: as received, decoded and encoded)"
        ),
        "max_watch_buffer_bytes": "memory all of a frontend's watcher queues may hold (counted alike)",
        "max_watch_streams": "open watch streams per frontend; past it RESOURCE_EXHAUSTED",
        "max_watch_streams_per_connection": "watch streams per client connection; past it RESOURCE_EXHAUSTED",
        "watch_idle_check_seconds": "a quiet watch stream checks its session this often",
        "watch_own_writes_flush_seconds": (
            "a watcher's own writes ride on its next message, or go alone after this (0: sent in full)"
        ),
        "health_check_interval_seconds": "how often readiness pings Redis",
        "redis_timeout_seconds": "a Redis command (or wait for a connection) slower than this is UNAVAILABLE",
        "redis_max_connections": "Redis connections per frontend (per cluster node); past it commands wait",
        "shutdown_grace_seconds": "how long in-flight calls may finish on SIGTERM or SIGINT",
        "max_message_bytes": "largest gRPC message sent or received",
        "definition_cache_size": "variable definitions (and name -> id hints) cached per frontend",
        "read_cache_bytes": (
            "memory for recently read variables: one read again unchanged is not decoded again (0: off)"
        ),
    }
)


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _field_kind(field: dataclasses.Field[Any]) -> Any:
    default = field.default
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return str


def _parse(field: dataclasses.Field[Any], raw: str) -> Any:
    kind = _field_kind(field)
    try:
        return kind(raw)
    except ValueError as exc:
        name = "boolean" if kind is _parse_bool else kind.__name__
        raise ValueError(f"{_ENV_PREFIX}{field.name.upper()}={raw!r} is not a valid {name}") from exc


def redacted_url(url: str | None) -> str:
    """``url`` without its password, for logs and messages."""
    if not url or "@" not in url:
        return url or ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
