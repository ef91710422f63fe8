"""The rules of a session that every backend applies: limits, reference checks and their messages.

The frontend (over Redis) and the local, in-process backend both raise the errors built here, so a
program sees the same exception class and the same words whichever backend holds its session. Value
rules (types, constraints) live in :mod:`unified_bridge.types`; this module adds what concerns a
session as a whole.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from unified_bridge.errors import (
    AlreadyExistsError,
    BridgeError,
    LimitExceededError,
    ValidationError,
    VersionConflictError,
)
from unified_bridge.types import (
    MIGRATION_METADATA_KEYS,
    constraints_from_proto,
    constraints_to_proto,
    validate_name,
)

__all__ = [
    "ID_SUFFIX_LENGTH",
    "LOOKS_LIKE_AN_ID",
    "MAX_GLOB_LENGTH",
    "MIGRATION_METADATA_KEYS",
    "SessionLimits",
    "already_exists",
    "as_stored",
    "batch_too_large",
    "check_description",
    "check_encoded_size",
    "check_expected_version",
    "check_not_id_like",
    "check_ref",
    "check_writer",
    "in_atomic_batch",
    "name_matcher",
    "same_definition",
    "too_many_variables",
    "version_conflict",
]

#: ``new_variable_id`` makes ``var_<name>_<8 hex digits>``.
ID_SUFFIX_LENGTH: Final = 8
LOOKS_LIKE_AN_ID: Final = re.compile(r"var_.+_[0-9a-f]{8}")
#: A writer token (``SetVariableRequest.writer``): what ``secrets.token_urlsafe`` makes, bounded.
MAX_WRITER_LENGTH: Final = 64
_WRITER: Final = re.compile(r"[A-Za-z0-9_-]*")


@dataclasses.dataclass(frozen=True, slots=True)
class SessionLimits:
    """The limits of one session. The defaults are the frontend's (``bridge-server --help``), so a
    session that fits locally fits on a frontend run with default settings."""

    max_value_bytes: int = 1024 * 1024
    max_variables: int = 10_000
    max_batch_size: int = 10_000
    max_name_length: int = 128
    max_metadata_entries: int = 64
    max_metadata_bytes: int = 16 * 1024
    max_description_length: int = 4096
    #: Events kept for ``watch(from_revision=...)`` to replay.
    change_log_length: int = 10_000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(f"limit {field.name} must be a positive integer, got {value!r}")


def check_ref(ref: object, max_name_length: int) -> str:
    """A variable name or id as a request may carry it (ids are a name plus ``var_`` and a suffix)."""
    if not ref:
        raise ValidationError("a variable name or id is required")
    return validate_name(ref, max_name_length + 16)


def check_expected_version(expected_version: object) -> None:
    """A compare-and-set's expected version: a version a variable can have (0 or more)."""
    if expected_version is not None and (
        not isinstance(expected_version, int) or isinstance(expected_version, bool) or expected_version < 0
    ):
        raise ValidationError(
            f"expected_version must be a whole number of at least 0, got {expected_version!r}"
        )


def check_writer(writer: str) -> str:
    """A writer token as a request may carry it: "" (none), or up to 64 URL-safe characters (it
    travels in an event header, where a space or a newline would end it)."""
    if writer != "" and (len(writer) > MAX_WRITER_LENGTH or not _WRITER.fullmatch(writer)):
        raise ValidationError(
            f"writer must be at most {MAX_WRITER_LENGTH} characters of A-Z a-z 0-9 _ -, got {writer[:80]!r}"
        )
    return writer


def check_not_id_like(name: str) -> None:
    # Names win over ids in lookups, so such a name would hide the variable it mimics.
    if LOOKS_LIKE_AN_ID.fullmatch(name):
        raise ValidationError(f"invalid variable name {name!r}: it has the form of a variable id")


def check_description(description: str, limit: int) -> None:
    if len(description) > limit:
        raise LimitExceededError(f"description is {len(description)} characters, above the limit of {limit}")


def check_encoded_size(name: str, size: int, limit: int) -> None:
    if size > limit:
        raise LimitExceededError(f"value of {name} is {size} bytes, above the limit of {limit} bytes")


def batch_too_large(size: int, limit: int) -> LimitExceededError:
    return LimitExceededError(f"batch of {size} items is above the limit of {limit}")


def too_many_variables(session_id: str, limit: int) -> LimitExceededError:
    return LimitExceededError(f"session {session_id} already holds {limit} variables")


def already_exists(name: str) -> AlreadyExistsError:
    return AlreadyExistsError(f"Variable already exists: {name} (with another definition)")


def version_conflict(ref: str, expected: int, found: int) -> VersionConflictError:
    return VersionConflictError(
        f"version conflict on {ref}: expected version {expected}, found {found}", current_version=found
    )


def in_atomic_batch(ref: str, error: BridgeError, batch_size: int) -> BridgeError:
    """The error of an atomic batch: the failing item's class, saying nothing was changed."""
    if batch_size == 1:
        return error
    return type(error)(f"atomic update rejected, nothing changed: {ref}: {error.message}")


def _without_migration_keys(metadata: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in metadata.items() if k not in MIGRATION_METADATA_KEYS}


def same_definition(
    first: tuple[Any, Mapping[str, Any], Mapping[str, str], str],
    second: tuple[Any, Mapping[str, Any], Mapping[str, str], str],
) -> bool:
    """Whether two (type, constraints, metadata, description) define the same variable: registering
    the second under the first's name is then a repeat, not a conflict."""
    (type_a, constraints_a, metadata_a, description_a) = first
    (type_b, constraints_b, metadata_b, description_b) = second
    return (
        type_a == type_b
        and dict(constraints_a) == dict(constraints_b)
        and _without_migration_keys(metadata_a) == _without_migration_keys(metadata_b)
        and description_a == description_b
    )


def as_stored(constraints: Mapping[str, Any]) -> dict[str, Any]:
    """Validated constraints as a frontend holds them: what comes out of their wire form (a request's
    ``Constraints``). ``min`` and ``max`` travel as doubles, so ``{"max": 100}`` is held, compared,
    quoted in messages and listed as ``{"max": 100.0}``."""
    return constraints_from_proto(constraints_to_proto(constraints))


#: The longest glob ``list_variables`` takes. fnmatch's translation costs quadratic time in the
#: glob's length ("[a-" * 30000 held an event loop for 30 s); names are at most a few hundred
#: characters, so a longer glob cannot mean more.
MAX_GLOB_LENGTH: Final = 512


def name_matcher(pattern: str | None) -> Callable[[str], bool]:
    """A predicate for ``list_variables(pattern)``: a glob on names (``fnmatch`` syntax, case-sensitive)."""
    if not pattern:
        return lambda _name: True
    if len(pattern) > MAX_GLOB_LENGTH:
        raise ValidationError(f"name pattern is {len(pattern)} characters, at most {MAX_GLOB_LENGTH}")
    compiled = re.compile(fnmatch.translate(pattern))
    return lambda name: compiled.match(name) is not None
