"""What the CLI asks of a bridge beyond the session API, and the only module that reaches into the
client's internals (its call runner, ``_attach`` and ``_import``).

``client.session(id)`` creates a session that does not exist, which an inspection tool must never do:
here a session is first read with GetSession (so a missing one is SessionNotFoundError, exit 3), and
the context on it is attached without a CreateSession call, as the local-first switch attaches one
after an import.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from unified_bridge import BridgeClient, BridgeError, ImportResult, SessionContext
from unified_bridge._calls import Flow, Rpc, run_flow
from unified_bridge.proto import unified_bridge_pb2 as pb2

__all__ = [
    "CONSISTENT_READ_ATTEMPTS",
    "SessionInfo",
    "SessionState",
    "get_session",
    "import_request_as_is",
    "iter_session_ids",
    "open_session",
    "read_session",
]

#: A consistent read of a busy session is tried this many times before giving up.
CONSISTENT_READ_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as GetSession returns it."""

    session_id: str
    created_at: datetime | None
    last_active: datetime | None
    ttl_seconds: int
    metadata: dict[str, str] = field(default_factory=dict)
    variable_count: int = 0
    revision: int = 0


@dataclass(frozen=True, slots=True)
class SessionState:
    """A session and all its variables, read at one revision."""

    info: SessionInfo
    variables: list[dict[str, Any]]


def _time(stamp: Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def _get_session(session_id: str) -> Flow[pb2.Session]:
    response: pb2.Session = yield Rpc("GetSession", pb2.GetSessionRequest(session_id=session_id), True)
    return response


def _list_page(page_size: int, token: str) -> Flow[pb2.ListSessionsResponse]:
    request = pb2.ListSessionsRequest(page_size=page_size, page_token=token)
    response: pb2.ListSessionsResponse = yield Rpc("ListSessions", request, True)
    return response


def get_session(client: BridgeClient, session_id: str) -> SessionInfo:
    """The session's metadata, ttl, revision and variable count; SessionNotFoundError if none."""
    message = run_flow(_get_session(session_id), client._invoke)
    return SessionInfo(
        session_id=message.session_id,
        created_at=_time(message.created_at, message.HasField("created_at")),
        last_active=_time(message.last_active, message.HasField("last_active")),
        ttl_seconds=message.ttl_seconds,
        metadata=dict(message.metadata),
        variable_count=message.variable_count,
        revision=message.revision,
    )


def iter_session_ids(client: BridgeClient, page_size: int = 0) -> Iterator[str]:
    """Every session id, page after page (``page_size`` 0: the frontend's default); a caller that
    stops early fetches no further page."""
    token = ""
    while True:
        page = run_flow(_list_page(page_size, token), client._invoke)
        yield from page.session_ids
        token = page.next_page_token
        if not token:
            return


def open_session(client: BridgeClient, info: SessionInfo) -> SessionContext:
    """A cacheless context on a session known to exist (no CreateSession call)."""
    return client._attach(info.session_id, info.revision, cache=False, cache_ttl=0)


def read_session(
    client: BridgeClient,
    session_id: str,
    pattern: str | None = None,
    attempts: int = CONSISTENT_READ_ATTEMPTS,
) -> SessionState:
    """The session and its variables (those matching the glob ``pattern``) as of one revision.

    ListVariables may take several pages, so the revision is read before and after: when it moved,
    the read is done again. A session that never stays still that long is a BridgeError.
    """
    for _ in range(attempts):
        before = get_session(client, session_id)
        with open_session(client, before) as ctx:
            variables = ctx.list_variables(pattern)
        after = get_session(client, session_id)
        if after.revision == before.revision:
            return SessionState(after, variables)
    raise BridgeError(
        f"session {session_id} changed during each of {attempts} attempts to read it at one revision; "
        "try again when it is quieter"
    )


def import_request_as_is(client: BridgeClient, request: pb2.ImportSessionRequest) -> ImportResult:
    """Send an ImportSession request built by ``unified_bridge._switch.import_request`` (with the
    ``migrated_at`` the caller chose, so the same file imported twice is the same import)."""
    return client._import(request, None)
