"""What each UnifiedBridge call needs of its caller: one table, one check.

The interceptor (:mod:`bridge_server.auth`) authenticates a call and sets :data:`CALLER`; the
handlers (:mod:`bridge_server.handlers`) then pass each parsed request through :func:`refusal`,
which reads the session id from the request and looks the method up in :data:`NEEDS`:

| need  | methods                                                                                 |
|-------|-----------------------------------------------------------------------------------------|
| read  | GetSession, Heartbeat, GetVariable, GetVariables, ListVariables, WatchSession           |
| open  | CreateSession: a read-write caller creates; a read caller only opens an existing session |
| write | ImportSession, DeleteSession, RegisterVariable, SetVariable(s), DeleteVariable           |
| list  | ListSessions: any caller; a scoped token sees only the ids its patterns match           |

Deleting a session is a write: a read-write token may delete the sessions it reaches. A scoped token
must name the session it creates (a server-chosen id could fall outside its patterns). A method
missing from the table is refused to every caller but an admin (fail closed).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from bridge_server.scopes import Principal

__all__ = ["CALLER", "NEEDS", "Need", "may_create", "refusal", "session_filter"]


class Need(enum.Enum):
    READ = "read"
    OPEN = "open"
    WRITE = "write"
    LIST = "list"


NEEDS: dict[str, Need] = {
    "CreateSession": Need.OPEN,
    "GetSession": Need.READ,
    "Heartbeat": Need.READ,
    "DeleteSession": Need.WRITE,
    "ListSessions": Need.LIST,
    "ImportSession": Need.WRITE,
    "RegisterVariable": Need.WRITE,
    "GetVariable": Need.READ,
    "GetVariables": Need.READ,
    "SetVariable": Need.WRITE,
    "SetVariables": Need.WRITE,
    "DeleteVariable": Need.WRITE,
    "ListVariables": Need.READ,
    "WatchSession": Need.READ,
}

#: The authenticated caller of the call being handled (set per call, in the call's own task).
CALLER: ContextVar[Principal | None] = ContextVar("bridge_caller", default=None)


def refusal(method: str, request: Any, caller: Principal | None) -> str | None:
    """Why ``caller`` may not make this call, or None if it may."""
    if caller is None:
        return f"{method} needs an authenticated caller"
    if caller.admin:
        return None
    need = NEEDS.get(method)
    if need is None:
        return f"token {caller.name!r} may not call {method}: only admin tokens may"
    if need is Need.LIST:
        return None
    session_id: str = request.session_id
    if method == "CreateSession" and not session_id:
        return (
            f"token {caller.name!r} must name the session it creates (its scope: {caller.describe_scope()})"
        )
    allowed = caller.may_write(session_id) if need is Need.WRITE else caller.reaches(session_id)
    if allowed:
        return None
    verb = "write" if need is Need.WRITE else need.value
    return (
        f"token {caller.name!r} may not {verb} session {session_id!r} (its scope: {caller.describe_scope()})"
    )


def may_create(session_id: str) -> bool:
    """Whether this call's caller may create ``session_id`` (or only open it, if it exists).

    The SDK's ``client.session(id)`` sends CreateSession, which refreshes an existing session: a
    read-only token may do that much, as a Heartbeat, but never creates one.
    """
    caller = CALLER.get()
    return caller is None or caller.may_write(session_id)


def session_filter() -> Callable[[str], bool] | None:
    """Which session ids this call's caller may see in ListSessions; None: all of them.

    No caller means the frontend runs without authentication (with it, :func:`refusal` has
    already refused a call that has none).
    """
    caller = CALLER.get()
    return None if caller is None or caller.admin else caller.reaches
