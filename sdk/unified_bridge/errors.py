"""The one exception tree of Unified Bridge, shared by the SDK and the server.

    BridgeError
    ├── ValidationError            (also ValueError)   INVALID_ARGUMENT
    ├── VariableNotFoundError      (also KeyError)     NOT_FOUND
    ├── SessionNotFoundError       (also KeyError)     NOT_FOUND
    ├── AlreadyExistsError                             ALREADY_EXISTS
    ├── VersionConflictError                           FAILED_PRECONDITION
    ├── LimitExceededError                             RESOURCE_EXHAUSTED
    ├── AuthenticationError                            UNAUTHENTICATED
    └── BridgeUnavailableError     (also ConnectionError) UNAVAILABLE, DEADLINE_EXCEEDED

Each class names the gRPC status it travels as (``status_code``, a ``grpc.StatusCode`` name), so the
server turns a raised error into a status and the SDK turns a status back into the same class with
one table (:func:`error_class_for_status`) in each direction.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "BridgeError",
    "BridgeUnavailableError",
    "LimitExceededError",
    "SessionNotFoundError",
    "ValidationError",
    "VariableNotFoundError",
    "VersionConflictError",
    "error_class_for_status",
]


class BridgeError(Exception):
    """Root of every error Unified Bridge raises."""

    status_code: ClassVar[str] = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        # KeyError would otherwise quote the message: str(KeyError("x")) == "'x'".
        return self.message


class ValidationError(BridgeError, ValueError):
    """A value, name, constraint or request field is not acceptable."""

    status_code = "INVALID_ARGUMENT"


class VariableNotFoundError(BridgeError, KeyError):
    """No variable with that name or id exists in the session."""

    status_code = "NOT_FOUND"

    @classmethod
    def for_ref(cls, name_or_id: str) -> VariableNotFoundError:
        return cls(f"Variable not found: {name_or_id}")


class SessionNotFoundError(BridgeError, KeyError):
    """The session does not exist (never created, deleted, or expired)."""

    status_code = "NOT_FOUND"

    @classmethod
    def for_id(cls, session_id: str) -> SessionNotFoundError:
        return cls(f"Session not found: {session_id}")


class AlreadyExistsError(BridgeError):
    """A variable with that name already exists with another definition."""

    status_code = "ALREADY_EXISTS"


class VersionConflictError(BridgeError):
    """A compare-and-set update found another version than the one expected."""

    status_code = "FAILED_PRECONDITION"

    def __init__(self, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class LimitExceededError(BridgeError):
    """A configured limit (value size, variables per session, batch size, ...) was reached."""

    status_code = "RESOURCE_EXHAUSTED"


class AuthenticationError(BridgeError):
    """The server refused the caller's credentials."""

    status_code = "UNAUTHENTICATED"


class BridgeUnavailableError(BridgeError, ConnectionError):
    """No frontend answered in time, or the frontend could not reach Redis."""

    status_code = "UNAVAILABLE"


_NOT_FOUND_PREFIX_SESSION = "Session not found"

_BY_STATUS: dict[str, type[BridgeError]] = {
    "INVALID_ARGUMENT": ValidationError,
    "OUT_OF_RANGE": ValidationError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "FAILED_PRECONDITION": VersionConflictError,
    "ABORTED": VersionConflictError,
    "RESOURCE_EXHAUSTED": LimitExceededError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": AuthenticationError,
    "UNAVAILABLE": BridgeUnavailableError,
    "DEADLINE_EXCEEDED": BridgeUnavailableError,
}


def error_class_for_status(status_name: str, message: str) -> type[BridgeError]:
    """The error class for a gRPC status name (``"NOT_FOUND"``) and the message that came with it."""
    if status_name == "NOT_FOUND":
        if message.startswith(_NOT_FOUND_PREFIX_SESSION):
            return SessionNotFoundError
        return VariableNotFoundError
    return _BY_STATUS.get(status_name, BridgeError)
