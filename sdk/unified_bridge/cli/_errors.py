"""Exit codes of ``bridge`` and the one place where an error becomes one line on stderr and a code.

Scripts rely on these numbers; the table is also in the package docstring and the README.
"""

from __future__ import annotations

import enum
from typing import IO, Any

import click

from unified_bridge.errors import (
    AlreadyExistsError,
    AuthenticationError,
    BridgeError,
    BridgeUnavailableError,
    LimitExceededError,
    SessionNotFoundError,
    ValidationError,
    VariableNotFoundError,
    VersionConflictError,
)

__all__ = ["CliError", "ExitCode", "exit_code_for", "fail"]


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # anything not listed below; a declined confirmation
    USAGE = 2  # bad arguments, a value the variable's type or constraints refuse, a bad export file
    NOT_FOUND = 3  # no such session or variable
    UNAVAILABLE = 4  # no frontend answered, Redis unreachable, health not SERVING
    AUTH = 5  # missing or refused token
    CONFLICT = 6  # already exists with other content, compare-and-set conflict
    LIMIT = 7  # a configured limit of the frontend was reached
    INTERRUPTED = 130  # Ctrl-C (except `bridge watch`, for which Ctrl-C is the normal end: 0)


# Most specific first: the first class the error is an instance of decides.
_CODES: tuple[tuple[type[BridgeError], ExitCode], ...] = (
    (ValidationError, ExitCode.USAGE),
    (SessionNotFoundError, ExitCode.NOT_FOUND),
    (VariableNotFoundError, ExitCode.NOT_FOUND),
    (BridgeUnavailableError, ExitCode.UNAVAILABLE),
    (AuthenticationError, ExitCode.AUTH),
    (AlreadyExistsError, ExitCode.CONFLICT),
    (VersionConflictError, ExitCode.CONFLICT),
    (LimitExceededError, ExitCode.LIMIT),
)


class CliError(click.ClickException):
    """An expected failure of a command: printed as ``bridge: error: <message>``, exits with ``code``."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        # click declares exit_code a ClassVar; it reads it from the instance, so this works alike.
        self.exit_code = int(code)  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"bridge: error: {self.format_message()}", file=file, err=file is None)


def exit_code_for(error: BridgeError) -> ExitCode:
    return next((code for cls, code in _CODES if isinstance(error, cls)), ExitCode.ERROR)


def fail(error: BridgeError, doing: str | None = None) -> CliError:
    """The CliError for an SDK error, ready to raise ``from error``; ``doing`` prefixes the message."""
    text = str(error) if doing is None else f"{doing}: {error}"
    return CliError(text, exit_code_for(error))
