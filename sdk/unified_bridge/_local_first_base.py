"""What the blocking and the asyncio local-first contexts keep and report: written once.

The local store, where the session may move (a client, owned or not), the switch log, the pending
import, the programs; ``backend``, ``is_bridged``, ``programs`` and ``session_id``; and the choice of
client for a move. The shells add only what waits (a thread gate or an asyncio one) and the calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from unified_bridge._local_store import LocalStore
from unified_bridge._rules import SessionLimits
from unified_bridge._switch import BackendStatus, PendingImport, SwitchLog
from unified_bridge.errors import ValidationError

__all__ = ["LocalFirstBase"]

ClientT = TypeVar("ClientT")


class LocalFirstBase(Generic[ClientT]):
    """The state of a local-first context; subclasses say which client class it moves with."""

    #: The client class of this flavour (BridgeClient or AsyncBridgeClient), and how to open one.
    _client_class: type[Any]

    def _connect(self, target: Any) -> ClientT:
        raise NotImplementedError

    def _init_state(
        self,
        session_id: str | None,
        bridge: Any,
        metadata: Mapping[str, str] | None,
        limits: SessionLimits | None,
        ttl: float | None,
        cache: bool,
        cache_ttl: timedelta | float,
    ) -> None:
        self._store = LocalStore(session_id, metadata=metadata, limits=limits)
        self._bridge = bridge
        self._client: ClientT | None = None
        self._owns_client = False
        self._metadata = metadata
        self._ttl = ttl
        self._cache = cache
        self._cache_ttl = cache_ttl
        self._log = SwitchLog()
        self._pending: PendingImport | None = None
        self._programs: dict[str, Any] = {}

    @property
    def backend(self) -> BackendStatus:
        """``kind`` ("local" or "bridged"), switches, failed switches, the last switch's duration and
        error, and every attempt."""
        return self._log.status()

    @property
    def is_bridged(self) -> bool:
        return self._log.kind == "bridged"

    @property
    def programs(self) -> Mapping[str, Any]:
        """The programs registered with ``register_program``, by name."""
        return MappingProxyType(dict(self._programs))

    @property
    def session_id(self) -> str:
        return self._store.session_id

    def _choose_client(self, bridge: Any) -> tuple[ClientT, ClientT | None]:
        """The client to move with, and a client this context owned and no longer uses (to close)."""
        if bridge is None and self._client is not None:
            return self._client, None
        target = bridge if bridge is not None else self._bridge
        if target is None:
            raise ValidationError("no bridge to move to: pass bridge= (a client or 'host:port')")
        if isinstance(target, self._client_class):
            client: ClientT = target
            owned = False
        else:
            client, owned = self._connect(target), True
        replaced = self._client if self._owns_client and self._client is not client else None
        self._client, self._owns_client = client, owned
        return client, replaced

    def _owned_client(self) -> ClientT | None:
        """The client to close with the context (one it opened itself), forgetting it."""
        client = self._client if self._owns_client else None
        self._client = None
        return client
