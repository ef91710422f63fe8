"""Unified Bridge: typed, constrained, versioned variables shared across processes.

>>> from unified_bridge import connect, VariableType            # doctest: +SKIP
>>> with connect("127.0.0.1:50051") as client, client.session("run-1") as ctx:
...     ctx.register_variable("lr", VariableType.FLOAT, 0.01, constraints={"min": 0, "max": 1})
...     ctx["lr"]                                               # cached, coherent across processes
...     ctx.update("steps", lambda n: n + 1)
"""

from importlib import metadata as _metadata

from unified_bridge._async_session import AsyncSessionContext
from unified_bridge._calls import DEFAULT_TIMEOUT, RetryPolicy
from unified_bridge._client import AsyncBridgeClient, BridgeClient, connect, connect_async
from unified_bridge._core import DEFAULT_CACHE_TTL
from unified_bridge._local_async import AsyncLocalSessionContext
from unified_bridge._local_first import LocalFirstContext, local_first
from unified_bridge._local_first_async import AsyncLocalFirstContext, local_first_async
from unified_bridge._local_session import LocalSessionContext
from unified_bridge._models import Change, ChangeEvent, SessionSnapshot, VariableState
from unified_bridge._proxy import AsyncVariableProxy, BatchUpdater, VariableNamespace, VariableProxy
from unified_bridge._rules import SessionLimits
from unified_bridge._session import SessionContext
from unified_bridge._switch import BackendStatus, ImportResult, SwitchRecord
from unified_bridge._watch import StreamBackoff
from unified_bridge.errors import (
    AlreadyExistsError,
    AuthenticationError,
    BridgeError,
    BridgeUnavailableError,
    LimitExceededError,
    PermissionDeniedError,
    SessionNotFoundError,
    ValidationError,
    VariableNotFoundError,
    VersionConflictError,
)
from unified_bridge.types import VariableType

try:
    __version__ = _metadata.version("unified-bridge")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_TIMEOUT",
    "AlreadyExistsError",
    "AsyncBridgeClient",
    "AsyncLocalFirstContext",
    "AsyncLocalSessionContext",
    "AsyncSessionContext",
    "AsyncVariableProxy",
    "AuthenticationError",
    "BackendStatus",
    "BatchUpdater",
    "BridgeClient",
    "BridgeError",
    "BridgeUnavailableError",
    "Change",
    "ChangeEvent",
    "ImportResult",
    "LimitExceededError",
    "LocalFirstContext",
    "LocalSessionContext",
    "PermissionDeniedError",
    "RetryPolicy",
    "SessionContext",
    "SessionLimits",
    "SessionNotFoundError",
    "SessionSnapshot",
    "StreamBackoff",
    "SwitchRecord",
    "ValidationError",
    "VariableNamespace",
    "VariableNotFoundError",
    "VariableProxy",
    "VariableState",
    "VariableType",
    "VersionConflictError",
    "connect",
    "connect_async",
    "local_first",
    "local_first_async",
]
