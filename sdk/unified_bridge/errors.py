"""The one exception tree of Unified Bridge, shared by the SDK and the server.

    BridgeError
    ├── ValidationError            (also ValueError)   INVALID_ARGUMENT
    ├── VariableNotFoundError      (also KeyError)     NOT_FOUND
    ├── SessionNotFoundError       (also KeyError)     NOT_FOUND
    ├── AlreadyExistsError                             ALREADY_EXISTS
    ├── VersionConflictError                           FAILED_PRECONDITION
    ├── LimitExceededError                             RESOURCE_EXHAUSTED
    ├── AuthenticationError                            UNAUTHENTICATED
    │   └── PermissionDeniedError                      PERMISSION_DENIED
    └── BridgeUnavailableError     (also ConnectionError) UNAVAILABLE, DEADLINE_EXCEEDED

Each class names the gRPC status it travels as (``status_code``, a ``grpc.StatusCode`` name). The
server also sends the class name as trailing metadata (:data:`ERROR_METADATA_KEY`), so the SDK raises
the very class the server raised: two classes share NOT_FOUND. Without that metadata (an older
server, a proxy, the auth interceptor) :func:`error_class_for_status` falls back to the status code.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "CURRENT_VERSION_METADATA_KEY",
    "ERROR_METADATA_KEY",
    "AlreadyExistsError",
    "AuthenticationError",
    "BridgeError",
    "BridgeUnavailableError",
    "LimitExceededError",
    "PermissionDeniedError",
    "SessionNotFoundError",
    "ValidationError",
    "VariableNotFoundError",
    "VersionConflictError",
    "error_class_for_status",
    "wire_name",
]

#: Trailing-metadata key under which the server sends the class name of the error it raised.
ERROR_METADATA_KEY = "ub-error"
#: Trailing-metadata key of a compare-and-set conflict: the version the variable has now.
CURRENT_VERSION_METADATA_KEY = "ub-current-version"


class BridgeError(Exception):
    """Root of every error Unified Bridge raises."""

    status_code: ClassVar[str] = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self._grpc_status: Any = None

    @property
    def grpc_status(self) -> Any:
        """The ``grpc.StatusCode`` this error travels as: the one a failed call returned, else the
        class's (so errors of the local backend carry the status a frontend would have sent)."""
        if self._grpc_status is None:
            import grpc  # only when asked: the local backend's paths never import gRPC for this

            return grpc.StatusCode[self.status_code]
        return self._grpc_status

    @grpc_status.setter
    def grpc_status(self, code: Any) -> None:
        self._grpc_status = code

    def __str__(self) -> str:
        # KeyError would otherwise quote the message: str(KeyError("x")) == "'x'".
        return self.message


class ValidationError(BridgeError, ValueError):
    """A value, name, constraint or request field is not acceptable."""

    status_code = "INVALID_ARGUMENT"


class VariableNotFoundError(BridgeError, KeyError):
    """No variable with that name or id exists in the session."""

    status_code = "NOT_FOUND"
    #: The message of :meth:`for_ref` (also ``MESSAGES["variable_not_found"]`` in the validators).
    template: ClassVar[str] = "Variable not found: {ref}"

    @classmethod
    def for_ref(cls, name_or_id: str) -> VariableNotFoundError:
        return cls(cls.template.format(ref=name_or_id))


class SessionNotFoundError(BridgeError, KeyError):
    """The session does not exist (never created, deleted, or expired)."""

    status_code = "NOT_FOUND"
    #: The message of :meth:`for_id` (also ``MESSAGES["session_not_found"]`` in the validators).
    template: ClassVar[str] = "Session not found: {session_id}"

    @classmethod
    def for_id(cls, session_id: str) -> SessionNotFoundError:
        return cls(cls.template.format(session_id=session_id))


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


class PermissionDeniedError(AuthenticationError):
    """The caller's token is valid but does not reach this session, or not for this kind of call.

    A subclass of :class:`AuthenticationError`, which it was raised as before scoped tokens existed.
    """

    status_code = "PERMISSION_DENIED"


class BridgeUnavailableError(BridgeError, ConnectionError):
    """No frontend answered in time, or the frontend could not reach Redis."""

    status_code = "UNAVAILABLE"


_BY_NAME: dict[str, type[BridgeError]] = {
    cls.__name__: cls
    for cls in (
        BridgeError,
        ValidationError,
        VariableNotFoundError,
        SessionNotFoundError,
        AlreadyExistsError,
        VersionConflictError,
        LimitExceededError,
        AuthenticationError,
        PermissionDeniedError,
        BridgeUnavailableError,
    )
}

# Only for servers that send no ERROR_METADATA_KEY: tell the two NOT_FOUND classes apart by message.
_SESSION_NOT_FOUND_PREFIX = SessionNotFoundError.template.partition("{")[0]

_BY_STATUS: dict[str, type[BridgeError]] = {
    "INVALID_ARGUMENT": ValidationError,
    "OUT_OF_RANGE": ValidationError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "FAILED_PRECONDITION": VersionConflictError,
    "ABORTED": VersionConflictError,
    "RESOURCE_EXHAUSTED": LimitExceededError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "UNAVAILABLE": BridgeUnavailableError,
    "DEADLINE_EXCEEDED": BridgeUnavailableError,
}


def wire_name(error_class: type[BridgeError]) -> str:
    """The name the server sends under :data:`ERROR_METADATA_KEY`: the nearest class of this tree."""
    return next(cls.__name__ for cls in error_class.__mro__ if _BY_NAME.get(cls.__name__) is cls)


def error_class_for_status(
    status_name: str, message: str, error_name: str | None = None
) -> type[BridgeError]:
    """The error class for a failed call: by the class name the server sent (``error_name``), else by
    the gRPC status name (``"NOT_FOUND"``) and the message that came with it."""
    by_name = _BY_NAME.get(error_name or "")
    if by_name is not None:
        return by_name
    if status_name == "NOT_FOUND":
        if message.startswith(_SESSION_NOT_FOUND_PREFIX):
            return SessionNotFoundError
        return VariableNotFoundError
    return _BY_STATUS.get(status_name, BridgeError)
