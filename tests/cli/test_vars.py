"""bridge vars list | get | set | delete: VALUE read by the variable's declared type."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import VARIABLES, one_error_line
from unified_bridge import SessionNotFoundError, VariableNotFoundError
from unified_bridge.cli._remote import get_session


def test_list_shows_every_variable_sorted(bridge, populated, session_id):
    result = bridge("vars", "list", session_id)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "VERSION", "VALUE"]
    names = [line.split()[0] for line in lines[1:]]
    assert names == sorted(name for name, *_ in VARIABLES)
    by_name = {line.split()[0]: line.split(None, 3) for line in lines[1:]}
    assert by_name["lr"] == ["lr", "float", "0", "0.25"]
    assert by_name["title"] == ["title", "string", "0", "hello"]
    assert by_name["grid"] == ["grid", "tensor", "0", "[[1, 2], [3, 4]]"]


def test_list_json_and_pattern(bridge, populated, session_id):
    result = bridge("vars", "list", session_id, "--json", "--pattern", "s*")
    assert result.exit_code == 0, result.output
    (steps,) = json.loads(result.stdout)
    assert steps["name"] == "steps"
    assert steps["type"] == "integer"
    assert steps["value"] == 3
    assert steps["constraints"] == {"max": 100, "min": 0}
    assert steps["description"] == "the steps"
    assert steps["id"].startswith("var_steps_")


@pytest.mark.parametrize(
    ("name", "printed"),
    [
        ("lr", "0.25"),
        ("steps", "3"),
        ("title", "hello"),
        ("enabled", "true"),
        ("optimizer", "adam"),
        ("module", "torch.nn"),
        ("vec", "[0.5, 1.5]"),
        ("grid", "[[1, 2], [3, 4]]"),
    ],
)
def test_get_prints_the_value(bridge, populated, session_id, name, printed):
    result = bridge("vars", "get", session_id, name)
    assert result.exit_code == 0, result.output
    assert result.stdout == printed + "\n"


def test_get_json_gives_everything(bridge, populated, session_id):
    result = bridge("vars", "get", session_id, "grid", "--json")
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["value"] == [[1, 2], [3, 4]]
    assert info["constraints"] == {"dtype": "int32", "shape": [2, 2]}
    assert info["version"] == 0
    assert set(info) == {
        "id", "name", "type", "value", "version", "constraints", "metadata", "description",
        "created_at", "updated_at",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "stored"),
    [
        ("lr", "0.5", 0.5),
        ("lr", " 1e-3 ", 0.001),
        ("steps", "42", 42),
        ("title", "new title", "new title"),
        ("enabled", "FALSE", False),
        ("optimizer", "sgd", "sgd"),
        ("module", "numpy", "numpy"),
        ("vec", "[1, 2.5]", [1.0, 2.5]),
        ("grid", "[[5, 6], [7, 8]]", [[5, 6], [7, 8]]),
        ("grid", '{"shape": [2, 2], "values": [9, 8, 7, 6]}', [[9, 8], [7, 6]]),
    ],
)
def test_set_parses_by_the_declared_type(bridge, populated, session_id, name, text, stored):
    result = bridge("vars", "set", session_id, name, text)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("(version 1)\n")
    assert populated.get_variable_info(name)["value"] == stored
    assert populated.get_variable_info(name)["version"] == 1


def test_set_of_an_unconstrained_float_takes_nan(bridge, client, session_id):
    with client.session(session_id) as ctx:
        ctx.register_variable("loss", "float", 1.0)
        result = bridge("vars", "set", session_id, "loss", "nan")
        assert result.exit_code == 0, result.output
        assert result.stdout == 'loss = "nan" (version 1)\n'
        assert bridge("vars", "get", session_id, "loss").stdout == '"nan"\n'


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("lr", "abc", "Cannot convert 'abc' to float"),
        ("lr", "1.5", "value 1.5 is above maximum 1"),
        ("lr", "nan", "is not a finite number"),
        ("steps", "2.5", "Cannot convert '2.5' to integer"),
        ("steps", "-1", "value -1 is below minimum 0"),
        ("steps", "99999999999999999999", "does not fit in a 64-bit integer"),
        ("title", "Hello", "must match pattern"),
        ("title", "much too long", "must be at most 10 characters"),
        ("enabled", "yes", "Cannot convert 'yes' to boolean"),
        ("optimizer", "rmsprop", "must be one of: adam, sgd"),
        ("module", "os", "module 'os' is not allowed"),
        ("vec", "[1, 2, 3]", "embedding must have 2 dimensions, got 3"),
        ("vec", "1,2", "an embedding value is written as JSON"),
        ("vec", '["a", 1]', "embedding values must be finite numbers"),
        ("grid", "[[1.5, 2], [3, 4]]", "tensor of dtype int32 needs whole numbers"),
        ("grid", "[[1, 2, 3]]", "tensor must have shape [2, 2], got [1, 3]"),
        ("grid", "[[1, 2], [3]]", "tensor is not rectangular"),
        ("grid", "{oops", "a tensor value is written as JSON"),
    ],
)
def test_a_bad_value_is_exit_2_with_a_clear_message(bridge, populated, session_id, name, text, says):
    before = populated.get_variable_info(name)
    result = bridge("vars", "set", session_id, name, text)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith(f"bridge: error: bad value for {name} ({before['type']}")
    assert says in line
    assert populated.get_variable_info(name)["version"] == before["version"]


def test_set_if_version_conflict_is_exit_6(bridge, populated, session_id):
    assert bridge("vars", "set", session_id, "steps", "4", "--if-version", "0").exit_code == 0
    stale = bridge("vars", "set", session_id, "steps", "5", "--if-version", "0")
    assert stale.exit_code == 6
    one_error_line(stale)
    assert populated.get_variable_info("steps")["value"] == 4


def test_missing_variable_and_missing_session_are_exit_3(bridge, populated, client, session_id):
    for args in (
        ("vars", "get", session_id, "nope"),
        ("vars", "set", session_id, "nope", "1"),
        ("vars", "delete", session_id, "nope"),
    ):
        result = bridge(*args)
        assert result.exit_code == 3, args
        assert one_error_line(result) == "bridge: error: Variable not found: nope"
    missing = f"{session_id}_missing"
    for args in (
        ("vars", "list", missing),
        ("vars", "get", missing, "x"),
        ("vars", "set", missing, "x", "1"),
    ):
        result = bridge(*args)
        assert result.exit_code == 3, args
        assert one_error_line(result) == f"bridge: error: Session not found: {missing}"
    with pytest.raises(SessionNotFoundError):  # reading never creates the session
        get_session(client, missing)


def test_delete(bridge, populated, session_id):
    result = bridge("vars", "delete", session_id, "title")
    assert result.exit_code == 0, result.output
    with pytest.raises(VariableNotFoundError):
        populated.get_variable_info("title")
    assert bridge("vars", "get", session_id, "title").exit_code == 3
