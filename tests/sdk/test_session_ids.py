"""Session ids as users write them (``tenant:42``, ``user/7``, timestamps, any script) work on every
backend, across the switch to the bridge, in listings and in watches."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from unified_bridge import ValidationError, connect

_ids = itertools.count()
USERS_IDS = ["tenant:42", "user/7", "run-2026-11-22T10:00", "équipe 北京", "{a}*?[b]%"]


@pytest.fixture(params=USERS_IDS)
def session_id(request: pytest.FixtureRequest) -> str:
    return f"{request.param} #{next(_ids)}"


def test_a_session_with_a_users_id_reads_writes_and_watches(ctx: Any, session_id: str) -> None:
    assert ctx.session_id == session_id
    ctx["x"] = 1
    ctx["x"] = 2
    events = ctx.watch(["x"], from_revision=ctx.revision)
    ctx["x"] = 3
    event = next(events)
    events.close()
    assert (event.changes[0].name, event.changes[0].value) == ("x", 3)
    assert (ctx["x"], ctx.get_variable_info("x")["version"]) == (3, 2)


def test_a_users_id_is_listed_as_written(frontend, session_id: str) -> None:
    with connect(frontend.target) as client, client.session(session_id) as ctx:
        ctx["x"] = 1
        assert session_id in client.list_sessions()
        assert ctx.delete_session() is True


def test_an_id_with_control_characters_is_refused_before_any_call(frontend) -> None:
    with connect(frontend.target) as client, pytest.raises(ValidationError, match="printable"):
        client.session("tenant\n42")
