"""Updates through real gRPC against real Redis: compare-and-set, atomic and per-item batches,
revisions and the events they publish."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tests.integration.helpers import (
    Watch,
    assert_status,
    create_session,
    get,
    register,
    revision,
    rpc_error,
    set_value,
)
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc
from unified_bridge.types import message


@pytest.fixture
def session(stub, session_id):
    create_session(stub, session_id)
    return session_id


def integer(n: int) -> pb.Value:
    return pb.Value(integer_value=n)


def update(ref: str, n: int, **fields) -> pb.VariableUpdate:
    return pb.VariableUpdate(name_or_id=ref, value=integer(n), **fields)


def three_bounded_integers(stub, session: str) -> dict[str, pb.Variable]:
    """a, b, c: integers in [0, 100], starting at 1, 2, 3."""
    bounds = pb.Constraints(min=0, max=100)
    return {
        name: register(stub, session, name, pb.VARIABLE_TYPE_INTEGER, integer(n), bounds)
        for n, name in enumerate("abc", start=1)
    }


def snapshot(stub, session: str) -> list[pb.Variable]:
    return list(stub.ListVariables(pb.ListVariablesRequest(session_id=session)).variables)


# --- single updates ----------------------------------------------------------------------------


def test_set_reports_id_version_and_the_new_revision(stub, session):
    registered = register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, integer(0))
    response = set_value(stub, session, "x", integer(7))
    assert response.id == registered.id
    assert response.version == 1
    assert response.revision == 2
    assert revision(stub, session) == 2


def test_compare_and_set_with_the_current_version_applies(stub, session):
    register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, integer(0))
    assert set_value(stub, session, "x", integer(1), expected_version=0).version == 1
    assert set_value(stub, session, "x", integer(2), expected_version=1).version == 2
    assert get(stub, session, "x").value.integer_value == 2


@pytest.mark.parametrize("stale", [0, 2, 99])
def test_compare_and_set_conflict_is_failed_precondition_and_changes_nothing(stub, session, stale):
    register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, integer(0))
    set_value(stub, session, "x", integer(1))
    before, rev = get(stub, session, "x"), revision(stub, session)
    error = rpc_error(
        stub.SetVariable,
        pb.SetVariableRequest(session_id=session, name_or_id="x", value=integer(5), expected_version=stale),
    )
    assert_status(
        error,
        grpc.StatusCode.FAILED_PRECONDITION,
        f"version conflict on x: expected version {stale}, found 1",
    )
    assert get(stub, session, "x") == before
    assert revision(stub, session) == rev


def test_compare_and_set_of_an_unknown_variable_is_not_found(stub, session):
    error = rpc_error(
        stub.SetVariable,
        pb.SetVariableRequest(session_id=session, name_or_id="ghost", value=integer(1), expected_version=0),
    )
    assert_status(error, grpc.StatusCode.NOT_FOUND, "Variable not found: ghost")


def test_only_one_of_two_racing_compare_and_sets_wins(stub, session):
    register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, integer(0))
    assert set_value(stub, session, "x", integer(1), expected_version=0).version == 1
    error = rpc_error(
        stub.SetVariable,
        pb.SetVariableRequest(session_id=session, name_or_id="x", value=integer(2), expected_version=0),
    )
    assert_status(error, grpc.StatusCode.FAILED_PRECONDITION)
    assert get(stub, session, "x").value.integer_value == 1


# --- atomic batches ----------------------------------------------------------------------------


def test_atomic_batch_applies_everything_in_one_revision(stub, session):
    three_bounded_integers(stub, session)
    rev = revision(stub, session)
    response = stub.SetVariables(
        pb.SetVariablesRequest(
            session_id=session, updates=[update("a", 10), update("b", 20), update("c", 30)], atomic=True
        )
    )
    assert response.revision == rev + 1
    assert [(r.name_or_id, r.ok, r.version) for r in response.results] == [
        ("a", True, 1),
        ("b", True, 1),
        ("c", True, 1),
    ]
    assert [v.value.integer_value for v in snapshot(stub, session)] == [10, 20, 30]
    assert revision(stub, session) == rev + 1


BAD_ITEMS = [
    pytest.param(
        update("b", 500),
        grpc.StatusCode.INVALID_ARGUMENT,
        "atomic update rejected, nothing changed: b: " + message("above_max", value=500, max=100),
        id="invalid-value",
    ),
    pytest.param(
        pb.VariableUpdate(name_or_id="b", value=pb.Value(string_value="x")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "atomic update rejected, nothing changed: b: "
        + message("wrong_kind", article="an", type="integer", kind="string_value"),
        id="wrong-field",
    ),
    pytest.param(
        update("ghost", 5),
        grpc.StatusCode.NOT_FOUND,
        "atomic update rejected, nothing changed: ghost: Variable not found: ghost",
        id="unknown-variable",
    ),
    pytest.param(
        update("b", 5, expected_version=7),
        grpc.StatusCode.FAILED_PRECONDITION,
        "atomic update rejected, nothing changed: b: version conflict on b: expected version 7, found 0",
        id="version-conflict",
    ),
]


@pytest.mark.parametrize(("bad", "code", "expected"), BAD_ITEMS)
def test_atomic_batch_with_one_bad_item_changes_nothing_and_publishes_nothing(
    stub, session, bad, code, expected
):
    three_bounded_integers(stub, session)
    before, rev = snapshot(stub, session), revision(stub, session)
    with Watch(stub, session, from_revision=rev) as watch:
        assert watch.caught_up().revision == rev
        error = rpc_error(
            stub.SetVariables,
            pb.SetVariablesRequest(
                session_id=session, updates=[update("a", 10), bad, update("c", 30)], atomic=True
            ),
        )
        assert_status(error, code, expected)
        assert snapshot(stub, session) == before
        assert revision(stub, session) == rev
        # The next event the watcher sees is this later, successful update: nothing came between.
        set_value(stub, session, "c", integer(33))
        event = watch.next()
    assert event.kind == pb.EVENT_KIND_UPDATED
    assert event.revision == rev + 1
    assert [(c.name, c.version, c.value.integer_value) for c in event.changes] == [("c", 1, 33)]


def test_a_failed_single_update_publishes_nothing(stub, session):
    three_bounded_integers(stub, session)
    rev = revision(stub, session)
    with Watch(stub, session, from_now=True) as watch:
        assert watch.caught_up().revision == rev
        for request in [
            pb.SetVariableRequest(session_id=session, name_or_id="a", value=integer(-1)),
            pb.SetVariableRequest(session_id=session, name_or_id="a", value=integer(5), expected_version=3),
            pb.SetVariableRequest(session_id=session, name_or_id="nope", value=integer(5)),
        ]:
            rpc_error(stub.SetVariable, request)
        set_value(stub, session, "a", integer(50))
        event = watch.next()
    assert (event.kind, event.revision) == (pb.EVENT_KIND_UPDATED, rev + 1)
    assert [(c.name, c.value.integer_value) for c in event.changes] == [("a", 50)]


# --- non-atomic batches ------------------------------------------------------------------------


def test_non_atomic_batch_reports_each_item_and_applies_the_good_ones(stub, session):
    variables = three_bounded_integers(stub, session)
    rev = revision(stub, session)
    response = stub.SetVariables(
        pb.SetVariablesRequest(
            session_id=session,
            updates=[
                update("a", 10),
                update("b", 500),
                update("ghost", 1),
                update(variables["c"].id, 30, expected_version=0),
                update("a", 11, expected_version=0),
            ],
            atomic=False,
        )
    )
    results = [(r.name_or_id, r.ok, r.id, r.version, r.error.code, r.error.message) for r in response.results]
    assert results == [
        ("a", True, variables["a"].id, 1, "", ""),
        ("b", False, "", 0, "INVALID_ARGUMENT", message("above_max", value=500, max=100)),
        ("ghost", False, "", 0, "NOT_FOUND", "Variable not found: ghost"),
        (variables["c"].id, True, variables["c"].id, 1, "", ""),
        ("a", False, "", 0, "FAILED_PRECONDITION", "version conflict on a: expected version 0, found 1"),
    ]
    assert [(v.name, v.value.integer_value, v.version) for v in snapshot(stub, session)] == [
        ("a", 10, 1),
        ("b", 2, 0),
        ("c", 30, 1),
    ]
    assert response.revision == rev + 1
    assert revision(stub, session) == rev + 1


def test_non_atomic_batch_is_one_event_with_every_applied_change(stub, session):
    three_bounded_integers(stub, session)
    rev = revision(stub, session)
    with Watch(stub, session, from_revision=rev) as watch:
        watch.caught_up()
        stub.SetVariables(
            pb.SetVariablesRequest(
                session_id=session, updates=[update("a", 10), update("b", -5), update("c", 30)]
            )
        )
        set_value(stub, session, "b", integer(20))
        first, second = watch.next(), watch.next()
    assert (first.kind, first.revision) == (pb.EVENT_KIND_UPDATED, rev + 1)
    assert [(c.name, c.value.integer_value) for c in first.changes] == [("a", 10), ("c", 30)]
    assert (second.revision, [c.name for c in second.changes]) == (rev + 2, ["b"])


def test_the_same_variable_twice_in_one_batch_is_applied_in_order(stub, session):
    register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, integer(0))
    response = stub.SetVariables(
        pb.SetVariablesRequest(session_id=session, updates=[update("x", 1), update("x", 2)], atomic=True)
    )
    assert [r.version for r in response.results] == [1, 2]
    current = get(stub, session, "x")
    assert (current.value.integer_value, current.version) == (2, 2)


@pytest.mark.parametrize(
    "updates",
    [[update("a", 500), update("ghost", 1)], [update("a", 5, expected_version=9)], []],
    ids=["all-failed-validation", "all-failed-in-script", "empty"],
)
def test_a_batch_that_changes_nothing_reports_the_unchanged_revision(stub, session, updates):
    three_bounded_integers(stub, session)
    rev = revision(stub, session)
    response = stub.SetVariables(pb.SetVariablesRequest(session_id=session, updates=updates))
    assert revision(stub, session) == rev
    assert response.revision == rev


def test_an_empty_batch_of_an_unknown_session_is_not_found(stub, session_id):
    error = rpc_error(stub.SetVariables, pb.SetVariablesRequest(session_id=session_id))
    assert_status(error, grpc.StatusCode.NOT_FOUND, f"Session not found: {session_id}")


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "non-atomic"])
def test_compare_and_set_within_one_batch_sees_the_earlier_items(stub, session, atomic):
    """The second item expects the version the first one replaced: a stale compare-and-set."""
    register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, integer(0))
    request = pb.SetVariablesRequest(
        session_id=session,
        updates=[update("x", 1, expected_version=0), update("x", 2, expected_version=0)],
        atomic=atomic,
    )
    if atomic:
        error = rpc_error(stub.SetVariables, request)
        assert_status(
            error,
            grpc.StatusCode.FAILED_PRECONDITION,
            "atomic update rejected, nothing changed: x: version conflict on x: expected version 0, found 1",
        )
        expected = (0, 0)
    else:
        response = stub.SetVariables(request)
        assert [(r.ok, r.version, r.error.code) for r in response.results] == [
            (True, 1, ""),
            (False, 0, "FAILED_PRECONDITION"),
        ]
        expected = (1, 1)
    current = get(stub, session, "x")
    assert (current.value.integer_value, current.version) == expected


def test_compare_and_set_chain_within_one_batch(stub, session):
    register(stub, session, "x", pb.VARIABLE_TYPE_INTEGER, integer(0))
    response = stub.SetVariables(
        pb.SetVariablesRequest(
            session_id=session,
            updates=[update("x", 1, expected_version=0), update("x", 2, expected_version=1)],
            atomic=True,
        )
    )
    assert [r.version for r in response.results] == [1, 2]
    assert get(stub, session, "x").version == 2


def test_a_non_atomic_batch_that_changes_nothing_keeps_the_revision(stub, session):
    three_bounded_integers(stub, session)
    rev = revision(stub, session)
    response = stub.SetVariables(
        pb.SetVariablesRequest(session_id=session, updates=[update("a", 500), update("ghost", 1)])
    )
    assert [r.ok for r in response.results] == [False, False]
    assert [r.error.code for r in response.results] == ["INVALID_ARGUMENT", "NOT_FOUND"]
    assert revision(stub, session) == rev


# --- large batches -----------------------------------------------------------------------------


def test_a_batch_of_1000_variables(stub, session):
    names = [f"v{i:04d}" for i in range(1000)]
    for name in names:
        register(stub, session, name, pb.VARIABLE_TYPE_INTEGER, integer(0))
    rev = revision(stub, session)
    response = stub.SetVariables(
        pb.SetVariablesRequest(
            session_id=session, updates=[update(name, i) for i, name in enumerate(names)], atomic=True
        )
    )
    assert response.revision == rev + 1
    assert len(response.results) == 1000
    assert all(r.ok and r.version == 1 for r in response.results)
    fetched = stub.GetVariables(pb.GetVariablesRequest(session_id=session, names_or_ids=names))
    assert list(fetched.missing) == []
    assert [v.value.integer_value for v in fetched.variables] == list(range(1000))
    assert stub.GetSession(pb.GetSessionRequest(session_id=session)).variable_count == 1000

    # And non-atomic, with every tenth item bad.
    wrong = pb.Value(string_value="not an integer")
    updates = [
        pb.VariableUpdate(name_or_id=name, value=wrong if i % 10 == 0 else integer(i + 1))
        for i, name in enumerate(names)
    ]
    response = stub.SetVariables(pb.SetVariablesRequest(session_id=session, updates=updates))
    assert [r.ok for r in response.results] == [i % 10 != 0 for i in range(1000)]
    assert response.revision == rev + 2


def test_a_batch_larger_than_one_redis_call_is_read_and_written_whole(stub, session):
    """The scripts read and write a batch in chunks of a thousand or so values (Lua's unpack takes a
    few thousand at most): 1,600 items over 400 variables cross several chunk edges."""
    names = [f"v{i}" for i in range(400)]
    for name in names:
        register(stub, session, name, pb.VARIABLE_TYPE_INTEGER, integer(0))
    rev = revision(stub, session)
    updates = [update(name, 1000 * round_ + i) for round_ in range(4) for i, name in enumerate(names)]
    response = stub.SetVariables(pb.SetVariablesRequest(session_id=session, updates=updates, atomic=True))
    assert response.revision == rev + 1
    assert [r.version for r in response.results] == [round_ + 1 for round_ in range(4) for _ in names]
    read = stub.GetVariables(pb.GetVariablesRequest(session_id=session, names_or_ids=names * 4))
    assert [v.value.integer_value for v in read.variables] == [3000 + i for i in range(400)] * 4
    assert {v.version for v in read.variables} == {4}


# --- a name whose variable changed on another frontend -----------------------------------------


@pytest.fixture
def stale_and_fresh(frontend_factory, session_id) -> Iterator[tuple[pb_grpc.UnifiedBridgeStub, ...]]:
    """Two frontends on one Redis, the session created: "stale" will remember a variable that is
    then deleted and registered again through "fresh"."""
    first, second = frontend_factory(), frontend_factory()
    with grpc.insecure_channel(first.target) as one, grpc.insecure_channel(second.target) as two:
        stale, fresh = pb_grpc.UnifiedBridgeStub(one), pb_grpc.UnifiedBridgeStub(two)
        create_session(stale, session_id)
        yield stale, fresh


@pytest.mark.parametrize("atomic", [True, False])
def test_an_update_by_name_reaches_the_variable_registered_anew_elsewhere(
    stale_and_fresh, session_id, atomic
):
    # The first frontend knows x as its first variable; through the second, x is deleted and
    # registered again with bounds the old one did not have. An atomic update by name through the
    # first lands on the new variable, checked against its definition. A non-atomic batch that
    # applied its other items cannot be tried again: that item reports NOT_FOUND (its variable is
    # gone), and the next update by name reaches the new variable.
    stale, fresh = stale_and_fresh
    old = register(stale, session_id, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    register(stale, session_id, "y", pb.VARIABLE_TYPE_INTEGER, integer(1))
    set_value(stale, session_id, "x", integer(2))  # the first frontend now holds x's id
    fresh.DeleteVariable(pb.DeleteVariableRequest(session_id=session_id, name_or_id="x"))
    new = register(fresh, session_id, "x", pb.VARIABLE_TYPE_INTEGER, integer(5), pb.Constraints(max=10))
    batch = pb.SetVariablesRequest(
        session_id=session_id, atomic=atomic, updates=[update("x", 7), update("y", 3)]
    )
    results = stale.SetVariables(batch).results
    if atomic:
        assert (results[0].ok, results[0].id) == (True, new.id)
    else:
        assert (results[0].ok, results[0].error.code) == (False, "NOT_FOUND")
        again = pb.SetVariablesRequest(
            session_id=session_id, atomic=False, updates=[update("x", 7), update("y", 4)]
        )
        # The frontend forgot what x meant to it: this time it looks the name up again.
        assert [r.ok for r in stale.SetVariables(again).results] == [True, True]
    assert results[1].ok
    current = get(stale, session_id, "x")
    assert (current.id, current.value.integer_value, current.version) == (new.id, 7, 1)
    over = pb.SetVariableRequest(session_id=session_id, name_or_id="x", value=integer(11))
    assert_status(rpc_error(stale.SetVariable, over), grpc.StatusCode.INVALID_ARGUMENT)
    by_old_id = pb.SetVariableRequest(session_id=session_id, name_or_id=old.id, value=integer(3))
    assert_status(rpc_error(stale.SetVariable, by_old_id), grpc.StatusCode.NOT_FOUND)
    assert get(fresh, session_id, "x").value.integer_value == 7


@pytest.mark.parametrize("atomic", [True, False])
def test_an_update_by_an_id_known_before_its_name_was_registered_anew_is_not_found(
    stale_and_fresh, session_id, atomic
):
    # The first frontend has written through x's first id; x is deleted and registered again
    # through the second. Through the first, the old id is not found, at once, and the new variable
    # is untouched: the SDK then looks the name up again.
    stale, fresh = stale_and_fresh
    old = register(stale, session_id, "x", pb.VARIABLE_TYPE_INTEGER, integer(1))
    set_value(stale, session_id, old.id, integer(2))  # the first frontend holds the old id
    fresh.DeleteVariable(pb.DeleteVariableRequest(session_id=session_id, name_or_id="x"))
    new = register(fresh, session_id, "x", pb.VARIABLE_TYPE_INTEGER, integer(5))
    if atomic:
        by_old_id = pb.SetVariableRequest(session_id=session_id, name_or_id=old.id, value=integer(3))
        assert_status(
            rpc_error(stale.SetVariable, by_old_id),
            grpc.StatusCode.NOT_FOUND,
            f"Variable not found: {old.id}",
        )
    else:
        batch = pb.SetVariablesRequest(session_id=session_id, atomic=False, updates=[update(old.id, 3)])
        result = stale.SetVariables(batch).results[0]
        assert (result.ok, result.error.code) == (False, "NOT_FOUND")
    current = get(fresh, session_id, "x")
    assert (current.id, current.value.integer_value, current.version) == (new.id, 5, 0)


def test_a_context_writing_by_id_reaches_the_variable_registered_anew_elsewhere(frontend_factory, session_id):
    from unified_bridge import connect

    first, second = frontend_factory(), frontend_factory()
    with connect(first.target) as one, connect(second.target) as two:
        writer = one.session(session_id, cache=False)
        other = two.session(session_id, cache=False)
        writer["x"] = 1
        writer["x"] = 2  # by id, through the first frontend
        other.delete_variable("x")
        other["x"] = 10
        writer["x"] = 3
        assert other["x"] == 3
        assert other.get_variable_info("x")["version"] == 1
        writer.close()
        other.close()
