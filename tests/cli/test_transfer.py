"""bridge export / import: a session moved whole, ids and versions kept, the file round-trips."""

from __future__ import annotations

import json
import math

import pytest

from tests.cli.conftest import one_error_line
from unified_bridge import SessionNotFoundError
from unified_bridge.cli._format import FORMAT_NAME, FORMAT_VERSION
from unified_bridge.cli._remote import get_session
from unified_bridge.types import MIGRATION_METADATA_KEYS


def _export(bridge, session_id) -> dict:
    result = bridge("export", session_id)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _without_migration(metadata: dict) -> dict:
    return {key: value for key, value in metadata.items() if key not in MIGRATION_METADATA_KEYS}


def _content(document: dict) -> tuple[dict, list[dict]]:
    """What an import must keep: the session's metadata and ttl, and every variable."""
    session = document["session"]
    kept_session = {"metadata": _without_migration(session["metadata"]), "ttl": session["ttl_seconds"]}
    variables = [{**v, "metadata": _without_migration(v["metadata"])} for v in document["variables"]]
    return kept_session, variables


def test_export_holds_the_whole_session(bridge, populated, session_id):
    populated.update_variable("steps", 7)
    document = _export(bridge, session_id)
    assert document["format"] == FORMAT_NAME
    assert document["format_version"] == FORMAT_VERSION
    assert document["session"]["id"] == session_id
    assert document["session"]["revision"] == 9
    assert document["session"]["metadata"] == {"owner": "ana", "purpose": "cli tests"}
    variables = {v["name"]: v for v in document["variables"]}
    assert [v["name"] for v in document["variables"]] == sorted(variables)
    steps = variables["steps"]
    assert steps["id"] == populated.get_variable_info("steps")["id"]
    assert (steps["type"], steps["value"], steps["version"]) == ("integer", 7, 1)
    assert steps["constraints"] == {"max": 100, "min": 0}
    assert steps["description"] == "the steps"
    assert steps["created_at"] <= steps["updated_at"]


def test_export_import_export_round_trips_with_ids_and_versions(bridge, populated, session_id):
    populated.update_variable("lr", 0.75)
    populated.update_variable("lr", 0.5)
    first = _export(bridge, session_id)
    copy_id = f"{session_id}_copy"
    imported = bridge("import", "-", "--session", copy_id, input=json.dumps(first))
    assert imported.exit_code == 0, imported.output
    assert imported.stdout.strip() == (
        f"imported session {copy_id}: 8 variable(s), revision {first['session']['revision'] + 1}"
    )
    second = _export(bridge, copy_id)
    assert _content(second) == _content(first)
    # Ids and versions are kept; what differs is only what an import is: one more mutation, marked.
    assert {v["id"]: v["version"] for v in second["variables"]} == {
        v["id"]: v["version"] for v in first["variables"]
    }
    assert second["session"]["revision"] == first["session"]["revision"] + 1
    for metadata in [second["session"]["metadata"], *(v["metadata"] for v in second["variables"])]:
        assert metadata["migrated_from"] == "import"
        assert metadata["migrated_at"] == first["exported_at"]
    # And a third generation is the second again.
    third_id = f"{session_id}_third"
    assert bridge("import", "-", "--session", third_id, input=json.dumps(second)).exit_code == 0
    assert _content(_export(bridge, third_id)) == _content(second)


def test_importing_the_same_file_twice_is_already_imported(bridge, populated, session_id, tmp_path):
    path = tmp_path / "session.json"
    assert bridge("export", session_id, "--output", str(path)).exit_code == 0
    copy_id = f"{session_id}_copy"
    assert bridge("import", str(path), "--session", copy_id).exit_code == 0
    again = bridge("import", str(path), "--session", copy_id)
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == f"session {copy_id} already imported (same content): nothing written"


def test_importing_over_a_session_with_other_content_is_exit_6(
    bridge, populated, client, session_id, tmp_path
):
    path = tmp_path / "session.json"
    assert bridge("export", session_id, "--output", str(path)).exit_code == 0
    result = bridge("import", str(path))  # onto the very session it came from
    assert result.exit_code == 6
    assert one_error_line(result).startswith(f"bridge: error: cannot import session {session_id}: ")
    assert get_session(client, session_id).revision == 8  # untouched


def test_non_finite_floats_round_trip_as_strict_json(bridge, client, session_id):
    with client.session(session_id) as ctx:
        ctx.register_variable("loss", "float", float("nan"))
        ctx.register_variable("floor", "float", float("-inf"))
        ctx.register_variable("gain", "float", -5.0, constraints={"max": float("inf")})
    result = bridge("export", session_id)
    assert result.exit_code == 0
    assert "NaN" not in result.stdout  # strict JSON
    assert "Infinity" not in result.stdout
    document = json.loads(result.stdout)
    variables = {v["name"]: v for v in document["variables"]}
    assert variables["loss"]["value"] == "nan"
    assert variables["floor"]["value"] == "-inf"
    assert variables["gain"]["value"] == -5.0
    assert variables["gain"]["constraints"] == {"max": "inf"}
    copy_id = f"{session_id}_copy"
    assert bridge("import", "-", "--session", copy_id, input=result.stdout).exit_code == 0
    with client.session(copy_id, cache=False) as copy:
        assert math.isnan(copy["loss"])
        assert copy["floor"] == float("-inf")
        assert copy.get_variable_info("gain")["constraints"] == {"max": float("inf")}


def _named(document: dict, name: str) -> dict:
    return next(v for v in document["variables"] if v["name"] == name)


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        (lambda d: d.update(format="something-else"), "'format' must be 'unified-bridge-session'"),
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), "is newer than this bridge reads"),
        (lambda d: d.update(format_version=0), "format_version must be at least 1"),
        (lambda d: d.pop("variables"), "'variables' is missing"),
        (lambda d: _named(d, "grid").update(value="not a list"), "variable 'grid': Cannot convert"),
        (lambda d: _named(d, "lr").update(type="complex"), "unknown variable type: 'complex'"),
        (lambda d: _named(d, "lr").update(version=-1), "'version' must not be negative"),
        (lambda d: _named(d, "lr").update(created_at="yesterday"), "'created_at' is not an ISO 8601 time"),
        (lambda d: d["session"].update(id="bad\nid"), "invalid session id"),
    ],
)
def test_a_bad_file_is_exit_2_and_imports_nothing(bridge, populated, client, session_id, spoil, says):
    document = _export(bridge, session_id)
    spoil(document)
    copy_id = f"{session_id}_copy"
    own_id = document.get("session", {}).get("id") == "bad\nid"  # that case imports under the file's id
    args = ["import", "-"] if own_id else ["import", "-", "--session", copy_id]
    result = bridge(*args, input=json.dumps(document))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "not a valid export file" in line
    assert says in line
    with pytest.raises(SessionNotFoundError):
        get_session(client, copy_id)


def test_a_file_that_is_not_json_is_exit_2(bridge, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    result = bridge("import", str(path))
    assert result.exit_code == 2
    assert "is not JSON" in one_error_line(result)


def test_a_missing_file_is_a_usage_error(bridge, tmp_path):
    result = bridge("import", str(tmp_path / "absent.json"))
    assert result.exit_code == 2
    assert "No such file or directory" in result.stderr


def test_export_of_a_missing_session_is_exit_3(bridge, session_id):
    result = bridge("export", session_id)
    assert result.exit_code == 3
    assert result.stdout == ""
    one_error_line(result)


def test_a_minimal_hand_written_file_imports(bridge, client, session_id):
    document = {
        "format": FORMAT_NAME,
        "format_version": 1,
        "exported_at": "2026-01-02T03:04:05.678+00:00",
        "session": {"id": session_id, "revision": 4},
        "variables": [
            {"id": "var_lr_0123abcd", "name": "lr", "type": "float", "value": 0.5, "version": 3},
            {"id": "var_mode_89abcdef", "name": "mode", "type": "choice", "value": "b", "version": 0,
             "constraints": {"choices": ["a", "b"]}},
        ],
    }  # fmt: skip
    result = bridge("import", "-", input=json.dumps(document))
    assert result.exit_code == 0, result.output
    exported = _export(bridge, session_id)
    assert exported["session"]["revision"] == 5
    lr = next(v for v in exported["variables"] if v["name"] == "lr")
    assert (lr["id"], lr["version"], lr["value"]) == ("var_lr_0123abcd", 3, 0.5)
    assert lr["created_at"] == lr["updated_at"] == "2026-01-02T03:04:05.678+00:00"
    assert _without_migration(lr["metadata"]) == {}
