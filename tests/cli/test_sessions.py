"""bridge sessions list | show | delete."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import one_error_line
from unified_bridge import SessionNotFoundError
from unified_bridge.cli._remote import get_session


def test_list_follows_every_page(bridge, client, session_id):
    ids = [f"{session_id}_{n}" for n in range(5)]
    for sid in ids:
        client.session(sid, cache=False).close()
    result = bridge("sessions", "list", "--page-size", "2")
    assert result.exit_code == 0, result.output
    listed = result.stdout.splitlines()
    assert set(ids) <= set(listed)
    assert len(listed) == len(set(listed))  # no session twice across pages


def test_list_limit_and_json(bridge, client, session_id):
    for n in range(3):
        client.session(f"{session_id}_{n}", cache=False).close()
    limited = bridge("sessions", "list", "--limit", "2", "--page-size", "1")
    assert limited.exit_code == 0
    assert len(limited.stdout.splitlines()) == 2
    as_json = bridge("sessions", "list", "--json")
    assert as_json.exit_code == 0
    listed = json.loads(as_json.stdout)
    assert {f"{session_id}_{n}" for n in range(3)} <= set(listed)


def test_list_rejects_a_bad_limit(bridge):
    result = bridge("sessions", "list", "--limit", "0")
    assert result.exit_code == 2
    assert "--limit" in result.stderr


def test_show_gives_metadata_ttl_revision_and_count(bridge, populated, session_id):
    result = bridge("sessions", "show", session_id, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["id"] == session_id
    assert shown["metadata"] == {"owner": "ana", "purpose": "cli tests"}
    assert shown["variable_count"] == 8
    assert shown["revision"] == populated.revision == 8
    assert shown["ttl_seconds"] > 0
    assert shown["created_at"].endswith("+00:00")
    text = bridge("sessions", "show", session_id)
    assert text.exit_code == 0
    rows = dict(line.split(None, 1) for line in text.stdout.splitlines())
    assert rows["variable_count"] == "8"
    assert rows["metadata.owner"] == "ana"
    assert rows["metadata.purpose"] == "cli tests"


def test_show_of_a_missing_session_is_exit_3_and_creates_nothing(bridge, client, session_id):
    result = bridge("sessions", "show", session_id)
    assert result.exit_code == 3
    assert one_error_line(result) == f"bridge: error: Session not found: {session_id}"
    with pytest.raises(SessionNotFoundError):
        get_session(client, session_id)


def test_delete_with_yes(bridge, populated, client, session_id):
    result = bridge("sessions", "delete", session_id, "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"deleted session {session_id}"
    with pytest.raises(SessionNotFoundError):
        get_session(client, session_id)


def test_delete_asks_and_a_no_keeps_the_session(bridge, populated, client, session_id):
    result = bridge("sessions", "delete", session_id, input="n\n")
    assert result.exit_code == 1
    assert f"Delete session {session_id} and its 8 variable(s)?" in result.stderr
    assert "not deleted" in result.stderr
    assert get_session(client, session_id).variable_count == 8


def test_delete_without_an_answer_keeps_the_session(bridge, populated, client, session_id):
    result = bridge("sessions", "delete", session_id, input="")
    assert result.exit_code == 1
    assert get_session(client, session_id).variable_count == 8


def test_delete_asks_and_a_yes_deletes(bridge, populated, client, session_id):
    result = bridge("sessions", "delete", session_id, input="y\n")
    assert result.exit_code == 0, result.output
    with pytest.raises(SessionNotFoundError):
        get_session(client, session_id)


def test_delete_of_a_missing_session_is_exit_3(bridge, session_id):
    result = bridge("sessions", "delete", session_id, "--yes")
    assert result.exit_code == 3
    one_error_line(result)
