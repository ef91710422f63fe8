"""What each Lua script of `lua/` takes and answers, declared once, and the one status → error table.

A contract names a script's KEYS (attributes of `SessionKeys`, or of `ImportKeys` for the import
scripts, in order), its ARGV (the fields of a NamedTuple, in order; `rest` says what follows them)
and its statuses (an IntEnum). Every script answers ``{status, ...}``; `bridge_server.scripts` turns
the first element into the contract's enum, and a number the enum does not declare raises
`UnsupportedStatusError` (a bug, INTERNAL), never passes for success. `OUTCOMES` says, for every
declared status, whether it is a result (None) or which error it is; `error_for` applies it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from bridge_server.keys import ImportStagingKeys, SessionKeys
from unified_bridge._rules import already_exists, too_many_variables, version_conflict
from unified_bridge.errors import (
    AlreadyExistsError,
    BridgeError,
    SessionNotFoundError,
    VariableNotFoundError,
    VersionConflictError,
)

__all__ = [
    "CONTRACTS",
    "OUTCOMES",
    "Context",
    "Contract",
    "ImportKeys",
    "UnsupportedStatusError",
    "error_for",
    "set_items",
    "status_of",
]


class UnsupportedStatusError(BridgeError):
    """A script answered a status its contract does not declare: a bug in this project."""

    status_code = "INTERNAL"


@dataclasses.dataclass(frozen=True, slots=True)
class ImportKeys:
    """The keys of the import scripts: the session's and its import's staging keys (one hash tag)."""

    session: str
    vars: str
    names: str
    log: str
    channel: str
    staged_vars: str
    staged_names: str
    staged_event: str

    @classmethod
    def of(cls, keys: SessionKeys, staging: ImportStagingKeys) -> ImportKeys:
        return cls(*keys.with_channel, staging.vars, staging.names, staging.event)


A = TypeVar("A", bound=tuple[Any, ...])
S = TypeVar("S", bound=enum.IntEnum)

_STORED = ("session", "vars", "names", "log")
_WITH_CHANNEL = (*_STORED, "channel")
_STAGING = ("staged_vars", "staged_names", "staged_event")


@dataclasses.dataclass(frozen=True, slots=True)
class Contract(Generic[A, S]):
    name: str  # the script's file name, without .lua
    keys: tuple[str, ...]  # KEYS, in order: attribute names of SessionKeys (or ImportKeys)
    args: type[A]  # ARGV, in order: a NamedTuple's fields
    statuses: type[S]  # reply[1] (Lua) is one of these
    rest: str = ""  # what follows the named ARGV, if anything
    # Whether a reply (status first) says the script wrote what a replica must have before the
    # caller hears of it (`--redis-wait-replicas`); None: the script writes nothing of the kind.
    wrote: Callable[[Sequence[Any]], bool] | None = None

    @property
    def argv(self) -> tuple[str, ...]:
        names: tuple[str, ...] = self.args._fields  # type: ignore[attr-defined]
        return (*names, f"{self.rest}...") if self.rest else names


# -- ARGV ----------------------------------------------------------------------------------------


class CreateSessionArgs(NamedTuple):
    now_ms: int
    ttl_seconds: int
    metadata_blob: bytes


class NowArgs(NamedTuple):
    now_ms: int


class ReadArgs(NamedTuple):
    now_ms: int
    touch: int  # 0|1: also mark the session active


class RegisterVariableArgs(NamedTuple):
    now_ms: int
    name: str
    id: str
    definition_blob: bytes
    value_blob: bytes
    max_variables: int
    log_max_len: int
    type: str


class SetVariablesArgs(NamedTuple):
    now_ms: int
    atomic: int  # 0|1
    log_max_len: int
    event_value_budget: int  # value bytes the event may carry; values past it are omitted ("read it")
    touch: int  # 0|1: refresh last_active and the TTL (when the frontend finds a refresh due)
    writer: str  # the writing context's token, carried by the channel's copy of the event ('' none)
    items: bytes  # every item in one argument: see `set_items`


def set_items(items: Iterable[tuple[str, int | None, bytes]]) -> bytes:
    """The items of a set_variables call, (id, expected version or None, value blob) each, as one
    argument: "<id> <expected version or nothing> <value length>\\n<value blob>" after another.

    One argument, not four per item: redis-py encodes and checks every argument in Python (a third
    of the frontend's time per item of a large batch), and Redis makes each one a Lua string."""
    parts: list[bytes] = []
    append = parts.append
    for var_id, expected_version, value in items:
        append(f"{var_id} {'' if expected_version is None else expected_version} {len(value)}\n".encode())
        append(value)
    return b"".join(parts)


class DeleteVariableArgs(NamedTuple):
    now_ms: int
    ref: str
    log_max_len: int


class ImportStageArgs(NamedTuple):
    staging_ttl_seconds: int
    event_part_field: str  # "<chunk_size>:<chunk_index>"


class ImportSessionArgs(NamedTuple):
    now_ms: int
    ttl_seconds: int
    metadata_blob: bytes
    revision: int  # of the import: the source's revision + 1
    digest: str
    log_max_len: int
    variable_count: int
    mode: str  # 'check' | 'inline' | 'staged'
    event_part_fields: str  # staged: every chunk's "<chunk_size>:<index>", space separated
    include_values: int  # inline: 0|1


# -- statuses ------------------------------------------------------------------------------------


class CreateSessionStatus(enum.IntEnum):
    REFRESHED = 0  # {0, session...}: it existed
    CREATED = 1  # {1, session...}


class TouchSessionStatus(enum.IntEnum):
    OK = 0  # {0, session...}
    NO_SESSION = 1


class DeleteSessionStatus(enum.IntEnum):
    DELETED = 0  # {0, revision of the final event}
    NO_SESSION = 1  # nothing to delete: a result, not an error


class RegisterVariableStatus(enum.IntEnum):
    REGISTERED = 0  # {0, revision}
    NO_SESSION = 1
    NAME_TAKEN = 2  # {2, existing_id}: the caller checks whether it is the same definition
    TOO_MANY_VARIABLES = 3


class GetVariablesStatus(enum.IntEnum):
    OK = 0  # {0, ttl, entries, revision}
    NO_SESSION = 1


class ListVariablesStatus(enum.IntEnum):
    OK = 0  # {0, ttl, flat HGETALL of vars}
    NO_SESSION = 1


class SetVariablesStatus(enum.IntEnum):
    OK = 0  # {0, revision or 0 when nothing changed, then per item: item status, detail}
    NO_SESSION = 1


class SetItemStatus(enum.IntEnum):
    """Per item of set_variables; detail: the new version, the current id, the current version."""

    UPDATED = 0
    NOT_FOUND = 1
    DEFINITION_CHANGED = 2
    VERSION_CONFLICT = 3


class DeleteVariableStatus(enum.IntEnum):
    DELETED = 0  # {0, revision, id}
    NO_SESSION = 1
    NOT_FOUND = 2


class WatchPositionStatus(enum.IntEnum):
    OK = 0  # {0, revision}
    NO_SESSION = 1  # the watcher is told the session is gone: a result


class ImportStageStatus(enum.IntEnum):
    STAGED = 0  # {0, variables staged by this call}


class ImportSessionStatus(enum.IntEnum):
    IMPORTED = 0  # {0, session...} (mode 'check': {0}, may be imported)
    ALREADY_DONE = 1  # {1, session...}: this very import (same digest) is there; nothing written
    EXISTS = 2  # the session holds other content
    STAGING_INCOMPLETE = 3  # the staged data expired or was removed


_VARIABLE_ITEM = "id, name, type, definition_blob, value_blob, version, updated_at"


# A write script's reply that says it wrote, or that answers the caller with state an earlier
# write made (a retried registration meets its own variable; a retried delete finds nothing left):
# both are reported as done, so both wait for the replicas. Only replies the caller is told as
# errors skip the wait, and so a refused write is reported as refused, not as a replication timeout.
def _status_in(*statuses: enum.IntEnum) -> Callable[[Sequence[Any]], bool]:
    return lambda reply: int(reply[0]) in statuses


def _always(reply: Sequence[Any]) -> bool:
    return True


def _changed_something(reply: Sequence[Any]) -> bool:
    """set_variables: OK with a revision; 0 when every item was refused (or, atomic, one was)."""
    return int(reply[0]) == SetVariablesStatus.OK and int(reply[1]) != 0


def _imported(reply: Sequence[Any]) -> bool:
    """import_session: IMPORTED with the session, or ALREADY_DONE; mode 'check' answers IMPORTED
    alone, writing nothing."""
    status = int(reply[0])
    return status == ImportSessionStatus.ALREADY_DONE or (
        status == ImportSessionStatus.IMPORTED and len(reply) > 1
    )


CREATE_SESSION = Contract("create_session", _STORED, CreateSessionArgs, CreateSessionStatus, wrote=_always)
TOUCH_SESSION = Contract("touch_session", _STORED, NowArgs, TouchSessionStatus)
DELETE_SESSION = Contract(
    "delete_session",
    _WITH_CHANNEL,
    NowArgs,
    DeleteSessionStatus,
    wrote=_always,  # NO_SESSION is a result ("not deleted"), not an error
)
REGISTER_VARIABLE = Contract(
    "register_variable",
    _WITH_CHANNEL,
    RegisterVariableArgs,
    RegisterVariableStatus,
    wrote=_status_in(RegisterVariableStatus.REGISTERED, RegisterVariableStatus.NAME_TAKEN),
)
GET_VARIABLES = Contract("get_variables", _STORED, ReadArgs, GetVariablesStatus, rest="refs")
LIST_VARIABLES = Contract("list_variables", _STORED, ReadArgs, ListVariablesStatus)
SET_VARIABLES = Contract(
    "set_variables", _WITH_CHANNEL, SetVariablesArgs, SetVariablesStatus, wrote=_changed_something
)
DELETE_VARIABLE = Contract(
    "delete_variable",
    _WITH_CHANNEL,
    DeleteVariableArgs,
    DeleteVariableStatus,
    wrote=_status_in(DeleteVariableStatus.DELETED),
)
WATCH_POSITION = Contract("watch_position", _STORED, ReadArgs, WatchPositionStatus)
IMPORT_STAGE = Contract(
    "import_stage",
    _STAGING,
    ImportStageArgs,
    ImportStageStatus,
    rest=f"({_VARIABLE_ITEM})",
    wrote=_always,
)
IMPORT_SESSION = Contract(
    "import_session",
    (*_WITH_CHANNEL, *_STAGING),
    ImportSessionArgs,
    ImportSessionStatus,
    rest=f"inline only: ({_VARIABLE_ITEM})",
    wrote=_imported,
)

CONTRACTS: tuple[Contract[Any, Any], ...] = (
    CREATE_SESSION,
    TOUCH_SESSION,
    DELETE_SESSION,
    REGISTER_VARIABLE,
    GET_VARIABLES,
    LIST_VARIABLES,
    SET_VARIABLES,
    DELETE_VARIABLE,
    WATCH_POSITION,
    IMPORT_STAGE,
    IMPORT_SESSION,
)


# -- the one status → outcome table -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What an error message may name: the call's session, ref and limit, the status's detail."""

    session_id: str = ""
    ref: str = ""
    limit: int = 0
    expected_version: int = 0
    detail: Any = None


Outcome = Callable[[Context], BridgeError] | None  # None: a result the caller reads


def _no_session(context: Context) -> BridgeError:
    return SessionNotFoundError.for_id(context.session_id)


def _no_variable(context: Context) -> BridgeError:
    return VariableNotFoundError.for_ref(context.ref)


OUTCOMES: Mapping[type[enum.IntEnum], Mapping[enum.IntEnum, Outcome]] = {
    CreateSessionStatus: {CreateSessionStatus.REFRESHED: None, CreateSessionStatus.CREATED: None},
    TouchSessionStatus: {TouchSessionStatus.OK: None, TouchSessionStatus.NO_SESSION: _no_session},
    DeleteSessionStatus: {DeleteSessionStatus.DELETED: None, DeleteSessionStatus.NO_SESSION: None},
    RegisterVariableStatus: {
        RegisterVariableStatus.REGISTERED: None,
        RegisterVariableStatus.NO_SESSION: _no_session,
        RegisterVariableStatus.NAME_TAKEN: lambda c: already_exists(c.ref),
        RegisterVariableStatus.TOO_MANY_VARIABLES: lambda c: too_many_variables(c.session_id, c.limit),
    },
    GetVariablesStatus: {GetVariablesStatus.OK: None, GetVariablesStatus.NO_SESSION: _no_session},
    ListVariablesStatus: {ListVariablesStatus.OK: None, ListVariablesStatus.NO_SESSION: _no_session},
    SetVariablesStatus: {SetVariablesStatus.OK: None, SetVariablesStatus.NO_SESSION: _no_session},
    SetItemStatus: {
        SetItemStatus.UPDATED: None,
        SetItemStatus.NOT_FOUND: _no_variable,
        SetItemStatus.DEFINITION_CHANGED: lambda c: VariableNotFoundError(
            f"Variable {c.ref} was deleted and registered again; read it anew"
        ),
        SetItemStatus.VERSION_CONFLICT: lambda c: version_conflict(c.ref, c.expected_version, int(c.detail)),
    },
    DeleteVariableStatus: {
        DeleteVariableStatus.DELETED: None,
        DeleteVariableStatus.NO_SESSION: _no_session,
        DeleteVariableStatus.NOT_FOUND: _no_variable,
    },
    WatchPositionStatus: {WatchPositionStatus.OK: None, WatchPositionStatus.NO_SESSION: None},
    ImportStageStatus: {ImportStageStatus.STAGED: None},
    ImportSessionStatus: {
        ImportSessionStatus.IMPORTED: None,
        ImportSessionStatus.ALREADY_DONE: None,
        ImportSessionStatus.EXISTS: lambda c: AlreadyExistsError(
            f"session {c.session_id!r} already exists on the bridge; an import creates a new session"
        ),
        ImportSessionStatus.STAGING_INCOMPLETE: lambda c: VersionConflictError(
            f"import of session {c.session_id!r} did not complete: its staged data expired or was "
            "removed meanwhile; nothing was imported, retry the import"
        ),
    },
}


def status_of(statuses: type[S], script: str, raw: Any) -> S:
    """The declared status `raw` (a reply's number) stands for; anything else is a bug."""
    # A dict lookup: calling the enum costs a microsecond, and a batch asks once per item.
    status: S | None = statuses._value2member_map_.get(raw)  # type: ignore[assignment]
    if status is not None and type(raw) is int:
        return status
    try:
        return statuses(int(raw))
    except (TypeError, ValueError):
        raise UnsupportedStatusError(f"script {script} answered an unsupported status {raw!r}") from None


def error_for(status: enum.IntEnum, context: Context) -> BridgeError | None:
    """The error a declared status means, or None when it is a result."""
    outcome = OUTCOMES[type(status)][status]
    return None if outcome is None else outcome(context)
