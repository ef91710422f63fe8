"""The scripts' contracts: every declared status maps to a result or an error, an unknown one raises,
and what the contracts declare matches the scripts and the prelude they are loaded with."""

from __future__ import annotations

import enum
import re
from pathlib import Path

import fakeredis
import pytest

from bridge_server import contracts
from bridge_server.contracts import CONTRACTS, OUTCOMES, Context, UnsupportedStatusError, error_for, status_of
from bridge_server.events import EventKind
from bridge_server.scripts import ALLOW_OOM, PRELUDE, Scripts, load_scripts, script_source
from unified_bridge.errors import (
    AlreadyExistsError,
    BridgeError,
    LimitExceededError,
    SessionNotFoundError,
    VariableNotFoundError,
    VersionConflictError,
)

LUA = Path(__file__).resolve().parents[2] / "lua"
CONTEXT = Context(session_id="s1", ref="x", limit=5, expected_version=2, detail=7)
ENUMS = sorted(
    {contract.statuses for contract in CONTRACTS} | {contracts.SetItemStatus}, key=lambda e: e.__name__
)

# The whole table, spelled out: None is a result, else the error class. (Keyed by class and name:
# members of two IntEnums with the same number are equal, and would collide as plain keys.)
EXPECTED: dict[tuple[str, str], type[BridgeError] | None] = {
    ("CreateSessionStatus", "REFRESHED"): None,
    ("CreateSessionStatus", "CREATED"): None,
    ("TouchSessionStatus", "OK"): None,
    ("TouchSessionStatus", "NO_SESSION"): SessionNotFoundError,
    ("DeleteSessionStatus", "DELETED"): None,
    ("DeleteSessionStatus", "NO_SESSION"): None,
    ("RegisterVariableStatus", "REGISTERED"): None,
    ("RegisterVariableStatus", "NO_SESSION"): SessionNotFoundError,
    ("RegisterVariableStatus", "NAME_TAKEN"): AlreadyExistsError,
    ("RegisterVariableStatus", "TOO_MANY_VARIABLES"): LimitExceededError,
    ("GetVariablesStatus", "OK"): None,
    ("GetVariablesStatus", "NO_SESSION"): SessionNotFoundError,
    ("ListVariablesStatus", "OK"): None,
    ("ListVariablesStatus", "NO_SESSION"): SessionNotFoundError,
    ("SetVariablesStatus", "OK"): None,
    ("SetVariablesStatus", "NO_SESSION"): SessionNotFoundError,
    ("SetItemStatus", "UPDATED"): None,
    ("SetItemStatus", "NOT_FOUND"): VariableNotFoundError,
    ("SetItemStatus", "DEFINITION_CHANGED"): VariableNotFoundError,
    ("SetItemStatus", "VERSION_CONFLICT"): VersionConflictError,
    ("DeleteVariableStatus", "DELETED"): None,
    ("DeleteVariableStatus", "NO_SESSION"): SessionNotFoundError,
    ("DeleteVariableStatus", "NOT_FOUND"): VariableNotFoundError,
    ("WatchPositionStatus", "OK"): None,
    ("WatchPositionStatus", "NO_SESSION"): None,
    ("ImportStageStatus", "STAGED"): None,
    ("ImportSessionStatus", "IMPORTED"): None,
    ("ImportSessionStatus", "ALREADY_DONE"): None,
    ("ImportSessionStatus", "EXISTS"): AlreadyExistsError,
    ("ImportSessionStatus", "STAGING_INCOMPLETE"): VersionConflictError,
}


def _key(status: enum.IntEnum) -> tuple[str, str]:
    return (type(status).__name__, status.name)


@pytest.mark.parametrize("status", [s for statuses in ENUMS for s in statuses], ids=repr)
def test_every_declared_status_is_a_result_or_an_error(status: enum.IntEnum) -> None:
    assert set(OUTCOMES[type(status)]) == set(type(status))
    expected = EXPECTED[_key(status)]
    error = error_for(status, CONTEXT)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error.message


def test_the_table_and_this_test_cover_the_same_statuses() -> None:
    assert set(OUTCOMES) == set(ENUMS)
    assert {_key(s) for statuses in ENUMS for s in statuses} == set(EXPECTED)


def test_messages_come_from_the_shared_rules() -> None:
    assert str(error_for(contracts.TouchSessionStatus.NO_SESSION, CONTEXT)) == str(
        SessionNotFoundError.for_id("s1")
    )
    conflict = error_for(contracts.SetItemStatus.VERSION_CONFLICT, CONTEXT)
    assert isinstance(conflict, VersionConflictError)
    assert conflict.current_version == 7
    assert "expected version 2, found 7" in conflict.message


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_an_unknown_status_raises(contract: contracts.Contract) -> None:
    unknown = max(contract.statuses) + 40
    with pytest.raises(
        UnsupportedStatusError, match=f"script {contract.name} answered an unsupported status"
    ):
        status_of(contract.statuses, contract.name, unknown)
    with pytest.raises(UnsupportedStatusError):
        status_of(contract.statuses, contract.name, b"not a number")
    assert UnsupportedStatusError("x").grpc_status.name == "INTERNAL"


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_each_script_documents_the_keys_and_argv_its_contract_declares(contract: contracts.Contract) -> None:
    text = (LUA / f"{contract.name}.lua").read_text()
    assert f"-- KEYS: {', '.join(contract.keys)}" in text
    declared_argv = re.search(r"-- ARGV: (.*?)(?:\n-- \S|\Z)", text, re.S)
    assert declared_argv is not None
    flat = re.sub(r"\s+", " ", declared_argv.group(1).replace("--", " "))
    positions = [flat.find(name) for name in contract.args._fields]
    assert -1 not in positions, (contract.args._fields, flat)
    assert positions == sorted(positions)
    assert set(contract.keys) <= set(contracts.ImportKeys.__dataclass_fields__)


def test_every_script_is_declared_once_and_loaded_with_the_prelude() -> None:
    assert [c.name for c in CONTRACTS] == list(Scripts.__dataclass_fields__)
    assert {path.stem for path in LUA.glob("*.lua")} == {c.name for c in CONTRACTS}
    for kind in EventKind:
        assert f"local EVENT_{kind.name} = {int(kind)}\n" in PRELUDE
    for contract in CONTRACTS:
        source = script_source(contract.name, flags=False)
        assert source.startswith(PRELUDE)
        flagged = script_source(contract.name)
        assert flagged.startswith("#!lua flags=allow-oom\n") == (contract.name in ALLOW_OOM)
        body = source[len(PRELUDE) :]
        # Event kinds, the event header and the TTL refresh live in the prelude only.
        assert "'UB1" not in body
        assert not re.search(r"EXPIRE', KEYS\[i\]", body)
        assert not re.search(r"ub_commit\(\d", body)


async def test_every_script_compiles_on_fakeredis_lua() -> None:
    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(version=(7, 0)), version=(7, 0))
    try:
        scripts = load_scripts(redis)
        for contract in CONTRACTS:
            await redis.script_load(getattr(scripts, contract.name).script)
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    ("contract", "reply", "wrote"),
    [
        (contracts.SET_VARIABLES, [0, 12, 3600, 0, 1], True),
        (contracts.SET_VARIABLES, [0, 0, 3600, 3, 4], False),  # every item refused: nothing to replicate
        (contracts.SET_VARIABLES, [1], False),
        (contracts.REGISTER_VARIABLE, [0, 5], True),
        (contracts.REGISTER_VARIABLE, [2, b"var_x_1"], True),  # a retry meeting its own variable
        (contracts.REGISTER_VARIABLE, [3], False),
        (contracts.REGISTER_VARIABLE, [1], False),
        (contracts.DELETE_VARIABLE, [0, 6, b"var_x_1"], True),
        (contracts.DELETE_VARIABLE, [2], False),
        (contracts.DELETE_SESSION, [0, 7], True),
        (contracts.DELETE_SESSION, [1], True),  # a result: a retried delete finds it gone
        (contracts.IMPORT_SESSION, [0, b"session"], True),
        (contracts.IMPORT_SESSION, [0], False),  # mode 'check'
        (contracts.IMPORT_SESSION, [1, b"session"], True),  # this very import, done before
        (contracts.IMPORT_SESSION, [2], False),
        (contracts.IMPORT_STAGE, [0, 10], True),
        (contracts.CREATE_SESSION, [0, b"session"], True),  # refreshed: its TTL was written
    ],
)
def test_a_reply_tells_whether_its_script_wrote(contract, reply, wrote):
    assert contract.wrote is not None
    assert contract.wrote(reply) is wrote


def test_scripts_that_only_read_or_refresh_never_wait_for_replicas():
    for contract in (
        contracts.GET_VARIABLES,
        contracts.LIST_VARIABLES,
        contracts.WATCH_POSITION,
        contracts.TOUCH_SESSION,
    ):
        assert contract.wrote is None
