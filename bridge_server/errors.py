"""What a failed call tells its caller: the one table from exceptions to gRPC statuses.

The project's own errors carry their status. Redis errors are told apart by their redis-py class
(never by the text of their message: the client strips the prefix Redis sends, "OOM ..." arrives as
``OutOfMemoryError("command not allowed ...")``). A Redis error reply without a class of its own is
told by its Redis error code, the reply's first word ("BUSY"). Anything else is a bug in this project:
INTERNAL, logged with its traceback.

| storage state                                        | status             | class raised by the SDK  |
|------------------------------------------------------|--------------------|--------------------------|
| full: ``maxmemory`` reached with ``noeviction`` (OOM) | RESOURCE_EXHAUSTED | LimitExceededError       |
| unreachable, connection lost, pool exhausted          | UNAVAILABLE        | BridgeUnavailableError   |
| no answer within ``--redis-timeout-seconds``           | UNAVAILABLE        | BridgeUnavailableError   |
| loading its data set (LOADING), a script running (BUSY) | UNAVAILABLE      | BridgeUnavailableError   |
| a read-only replica (READONLY), master down (MASTERDOWN) | UNAVAILABLE     | BridgeUnavailableError   |
| cluster down or resharding (CLUSTERDOWN, TRYAGAIN)     | UNAVAILABLE        | BridgeUnavailableError   |
| the frontend's Redis credentials refused (NOAUTH, NOPERM) | UNAVAILABLE     | BridgeUnavailableError   |

A timeout is UNAVAILABLE rather than DEADLINE_EXCEEDED: the caller's deadline did not pass, the
storage's did, and the outcome of a write is unknown either way (the SDK retries only what a repeat
cannot apply twice).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import grpc
from redis import exceptions as redis_errors

from unified_bridge.errors import (
    BridgeError,
    BridgeUnavailableError,
    LimitExceededError,
    VersionConflictError,
)

__all__ = ["Status", "status_for"]

log = logging.getLogger(__name__)


class Status(NamedTuple):
    code: grpc.StatusCode
    message: str
    error_class: type[BridgeError] | None  # None: not one of ours (INTERNAL)
    current_version: int | None = None  # a compare-and-set's: what the caller retries against


_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE

# redis-py class -> (status, what the caller is told). Checked in order: subclasses first.
_BY_CLASS: tuple[tuple[type[Exception], grpc.StatusCode, str], ...] = (
    (redis_errors.OutOfMemoryError, grpc.StatusCode.RESOURCE_EXHAUSTED, "storage is full (Redis maxmemory)"),
    (redis_errors.ReadOnlyError, _UNAVAILABLE, "storage is a read-only replica (failover in progress?)"),
    (redis_errors.MasterDownError, _UNAVAILABLE, "storage replica lost its master"),
    (redis_errors.BusyLoadingError, _UNAVAILABLE, "storage is loading its data set"),
    (redis_errors.ClusterDownError, _UNAVAILABLE, "storage cluster is down"),
    (redis_errors.TryAgainError, _UNAVAILABLE, "storage cluster is moving keys; try again"),
    (redis_errors.TimeoutError, _UNAVAILABLE, "storage did not answer in time (outcome unknown)"),
    (redis_errors.AuthenticationError, _UNAVAILABLE, "storage refused the frontend's credentials"),
    (redis_errors.NoPermissionError, _UNAVAILABLE, "storage refused the frontend's credentials"),
    (redis_errors.ConnectionError, _UNAVAILABLE, "storage unavailable"),
    (redis_errors.ClusterError, _UNAVAILABLE, "storage cluster unavailable"),
)

# Redis error codes (the reply's first word) that redis-py has no class for.
_BY_CODE: dict[str, tuple[grpc.StatusCode, str]] = {
    "BUSY": (_UNAVAILABLE, "storage is busy running a script"),
}

_CLASS_OF_STATUS = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: LimitExceededError,
    _UNAVAILABLE: BridgeUnavailableError,
}


def _storage_status(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    for error_class, code, message in _BY_CLASS:
        if isinstance(exc, error_class):
            return code, message
    if type(exc) is redis_errors.ResponseError:
        error_code = str(exc).split(" ", 1)[0]
        return _BY_CODE.get(error_code)
    return None


def status_for(exc: BaseException) -> Status:
    """The status a failed call ends with."""
    if isinstance(exc, BridgeError):
        current = exc.current_version if isinstance(exc, VersionConflictError) else None
        return Status(grpc.StatusCode[exc.status_code], exc.message, type(exc), current)
    storage = _storage_status(exc)
    if storage is not None:
        code, message = storage
        log.warning("%s: %s: %s", message, type(exc).__name__, exc)
        return Status(code, f"{message}: {exc}", _CLASS_OF_STATUS[code])
    log.exception("internal error", exc_info=exc)
    return Status(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}", None)
