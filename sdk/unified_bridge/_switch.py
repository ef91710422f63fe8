"""Moving a local session to the bridge: what the sync and the async local-first contexts share.

The switch is: writers wait -> snapshot -> one ``ImportSession`` call that writes the whole session
atomically, ids and versions kept -> the context points at the bridge -> writers go on. Readers never
wait. If any step fails, the context stays local with every value, and the failure is recorded here.

The import is safe to repeat: the frontend recognizes the same import by a digest of its content and
answers "already done". So the call is retried like any idempotent call, and a switch that failed
with an unknown outcome sends the very same request next time, as long as nothing was written
locally since.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from google.protobuf.timestamp_pb2 import Timestamp

from unified_bridge._calls import Flow, Rpc
from unified_bridge._models import SessionSnapshot, VariableState
from unified_bridge._rules import MIGRATION_METADATA_KEYS
from unified_bridge.errors import BridgeError
from unified_bridge.proto import unified_bridge_pb2 as pb2
from unified_bridge.types import constraints_to_proto, value_to_proto

__all__ = [
    "BackendStatus",
    "ImportResult",
    "PendingImport",
    "SwitchLog",
    "SwitchRecord",
    "import_request",
    "import_session",
    "needs_bridge",
    "next_import",
]

_MIGRATED_AT, _MIGRATED_FROM = MIGRATION_METADATA_KEYS

BackendKind = Literal["local", "bridged"]


@dataclass(frozen=True, slots=True)
class SwitchRecord:
    """One attempt to move to the bridge."""

    at: datetime
    ok: bool
    seconds: float
    error: BridgeError | None = None


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """Where a local-first context keeps its variables now, and how it got there."""

    kind: BackendKind
    switches: int = 0
    failed_switches: int = 0
    last_switch_seconds: float | None = None
    last_error: BridgeError | None = None
    history: tuple[SwitchRecord, ...] = ()


@dataclass(slots=True)
class SwitchLog:
    """The mutable record behind :class:`BackendStatus`."""

    kind: BackendKind = "local"
    history: list[SwitchRecord] = field(default_factory=list)

    def succeeded(self, started: float) -> None:
        self.kind = "bridged"
        self.history.append(SwitchRecord(datetime.now(UTC), True, time.perf_counter() - started))

    def failed(self, started: float, error: BridgeError) -> None:
        self.history.append(SwitchRecord(datetime.now(UTC), False, time.perf_counter() - started, error))

    def status(self) -> BackendStatus:
        history = tuple(self.history)
        last = history[-1] if history else None
        return BackendStatus(
            kind=self.kind,
            switches=sum(1 for record in history if record.ok),
            failed_switches=sum(1 for record in history if not record.ok),
            last_switch_seconds=None if last is None else last.seconds,
            last_error=None if last is None or last.ok else last.error,
            history=history,
        )


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What the frontend answered to an import."""

    session_id: str
    revision: int
    imported: bool  # False: this very import had already been applied (a retry)
    digest: str


@dataclass(frozen=True, slots=True)
class PendingImport:
    """An import sent whose outcome is not known: sent again as it is while the local session is
    still at ``revision``, so a lost reply never turns into ALREADY_EXISTS."""

    revision: int
    request: pb2.ImportSessionRequest


def next_import(snapshot: SessionSnapshot, pending: PendingImport | None, ttl: float | None) -> PendingImport:
    """The import to send for ``snapshot``: the pending one again if nothing changed since it was
    sent (its outcome may be "applied"), else a new one."""
    if pending is not None and pending.revision == snapshot.revision:
        return pending
    return PendingImport(snapshot.revision, import_request(snapshot, ttl=ttl))


def needs_bridge(spec: Any, requires_bridge: bool | None) -> bool:
    """Whether a program spec says it must share its variables: ``requires_bridge``, ``shared`` or
    ``requires_python`` (the reference's name), as a mapping key or an attribute."""
    if requires_bridge is not None:
        return requires_bridge
    for key in ("requires_bridge", "shared", "requires_python"):
        flag = spec.get(key) if isinstance(spec, Mapping) else getattr(spec, key, None)
        if flag:
            return True
    return False


def _timestamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _variable(state: VariableState, migration: Mapping[str, str]) -> pb2.Variable:
    definition = state.definition
    return pb2.Variable(
        id=definition.id,
        name=definition.name,
        type=definition.type.to_proto(),  # type: ignore[arg-type]  # the proto enum is an int
        value=value_to_proto(definition.type, state.value, definition.constraints),
        constraints=constraints_to_proto(definition.constraints),
        metadata={**definition.metadata, **migration},
        description=definition.description,
        version=state.version,
        created_at=_timestamp(state.created_at_ms),
        updated_at=_timestamp(state.updated_at_ms),
    )


def import_request(
    snapshot: SessionSnapshot,
    *,
    ttl: float | None,
    migrated_from: str = "local",
    migrated_at: datetime | None = None,
) -> pb2.ImportSessionRequest:
    """The ImportSession request for ``snapshot``; every variable and the session itself are marked
    ``migrated_from`` and ``migrated_at`` (metadata that re-registration ignores).

    ``migrated_at`` defaults to now. The frontend knows an import again by its digest, so a caller
    that wants a second import of the same data to answer "already imported" passes a fixed time
    (``bridge import`` passes the export's time).
    """
    moved = datetime.now(UTC) if migrated_at is None else migrated_at
    migration = {
        _MIGRATED_FROM: migrated_from,
        _MIGRATED_AT: moved.isoformat(timespec="milliseconds"),
    }
    return pb2.ImportSessionRequest(
        session_id=snapshot.session_id,
        ttl_seconds=int(ttl or 0),
        metadata={**snapshot.metadata, **migration},
        revision=snapshot.revision,
        variables=[_variable(state, migration) for state in snapshot.variables],
    )


def import_session(request: pb2.ImportSessionRequest) -> Flow[ImportResult]:
    """ImportSession, retried like any idempotent call (the frontend recognizes a repeat), and checked:
    a session that does not hold what was sent is an error, not a switch."""
    response: pb2.ImportSessionResponse = yield Rpc("ImportSession", request, True)
    session = response.session
    expected_revision = request.revision + 1
    if response.imported and (
        session.revision != expected_revision or session.variable_count != len(request.variables)
    ):
        raise BridgeError(
            f"import of session {request.session_id} could not be verified: the bridge holds "
            f"{session.variable_count} variables at revision {session.revision}, expected "
            f"{len(request.variables)} at revision {expected_revision}"
        )
    return ImportResult(session.session_id, session.revision, response.imported, response.digest)
