"""ImportSession: a whole session created at once, with its ids, versions, values and timestamps."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
import redis
from google.protobuf.timestamp_pb2 import Timestamp

from tests.integration.helpers import (
    EventReader,
    assert_status,
    create_session,
    get,
    register_int,
    revision,
    rpc_error,
    session_redis_keys,
    set_value,
)
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc
from unified_bridge.types import VariableType

CREATED, UPDATED = 1_700_000_000_123, 1_700_000_555_456


def _stamp(milliseconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(milliseconds)
    return stamp


def float_var(
    name: str, value: float = 0.5, version: int = 7, suffix: str = "0123abcd", **fields
) -> pb.Variable:
    values = {
        "id": f"var_{name}_{suffix}",
        "name": name,
        "type": pb.VARIABLE_TYPE_FLOAT,
        "value": pb.Value(float_value=value),
        "constraints": pb.Constraints(min=0, max=1),
        "version": version,
        "created_at": _stamp(CREATED),
        "updated_at": _stamp(UPDATED),
    }
    values.update(fields)
    return pb.Variable(**values)


def int_var(name: str, value: int, version: int = 3) -> pb.Variable:
    return pb.Variable(
        id=f"var_{name}_{value % 2**32:08x}",
        name=name,
        type=pb.VARIABLE_TYPE_INTEGER,
        value=pb.Value(integer_value=value),
        version=version,
    )


def three_vars() -> list[pb.Variable]:
    return [
        float_var(
            "temperature",
            metadata={"migrated_from": "local", "migrated_at": "2026-01-01T00:00:00Z", "owner": "me"},
            description="sampling temperature",
        ),
        pb.Variable(
            id="var_label_ffff0000",
            name="label",
            type=pb.VARIABLE_TYPE_STRING,
            value=pb.Value(string_value="AB12"),
            constraints=pb.Constraints(pattern="^[A-Z]+[0-9]+$", max_length=8),
            version=0,
            created_at=_stamp(CREATED + 1),
            updated_at=_stamp(CREATED + 1),
        ),
        pb.Variable(
            id="var_weights_00000001",
            name="weights",
            type=pb.VARIABLE_TYPE_TENSOR,
            value=pb.Value(tensor_value=pb.Tensor(shape=[2, 2], values=[1, 2, 3, 4])),
            constraints=pb.Constraints(shape=[2, 2], dtype="float32"),
            version=41,
        ),
    ]


def import_request(session_id: str, variables, revision: int = 5, **fields) -> pb.ImportSessionRequest:
    return pb.ImportSessionRequest(session_id=session_id, revision=revision, variables=variables, **fields)


def stored_keys(redis_url: str, session_id: str) -> list[bytes]:
    with redis.Redis.from_url(redis_url) as client:
        return session_redis_keys(client, session_id)


def staging_keys(redis_url: str, session_id: str) -> list[bytes]:
    return [key for key in stored_keys(redis_url, session_id) if b":import:" in key]


# -- what an import keeps ------------------------------------------------------------------------


def test_import_of_no_variables_creates_the_session(stub, session_id):
    response = stub.ImportSession(import_request(session_id, [], revision=9, metadata={"from": "local"}))
    assert response.imported
    assert len(response.digest) == 64
    assert (response.session.revision, response.session.variable_count) == (10, 0)
    session = stub.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert (session.revision, dict(session.metadata)) == (10, {"from": "local"})


def test_import_keeps_ids_versions_values_and_definitions(stub, session_id):
    sent = three_vars()
    response = stub.ImportSession(import_request(session_id, sent, revision=5, ttl_seconds=600))
    assert response.imported
    assert (response.session.revision, response.session.variable_count) == (6, 3)
    assert response.session.ttl_seconds == 600
    for variable in sent:
        fetched = get(stub, session_id, variable.name)
        assert (fetched.id, fetched.name, fetched.type, fetched.version) == (
            variable.id,
            variable.name,
            variable.type,
            variable.version,
        )
        assert fetched.constraints == variable.constraints
        assert dict(fetched.metadata) == dict(variable.metadata)
        assert fetched.description == variable.description
        assert get(stub, session_id, variable.id).id == variable.id
    temperature = get(stub, session_id, "temperature")
    assert temperature.value.float_value == 0.5
    assert (temperature.created_at.ToMilliseconds(), temperature.updated_at.ToMilliseconds()) == (
        CREATED,
        UPDATED,
    )
    assert get(stub, session_id, "label").value.string_value == "AB12"
    weights = get(stub, session_id, "weights")
    assert (list(weights.value.tensor_value.shape), list(weights.value.tensor_value.values)) == (
        [2, 2],
        [1, 2, 3, 4],
    )
    # Timestamps that were not sent are the time of the import.
    assert weights.created_at.ToMilliseconds() > UPDATED
    assert weights.updated_at.ToMilliseconds() == weights.created_at.ToMilliseconds()


def test_watch_from_the_source_revision_replays_the_import_then_goes_live(stub, session_id):
    stub.ImportSession(import_request(session_id, three_vars(), revision=5))
    reader = EventReader(stub, session_id, from_revision=5)
    try:
        replayed = reader.until_caught_up()
        assert [(e.revision, e.kind) for e in replayed] == [(6, pb.EVENT_KIND_IMPORTED)]
        changes = {change.name: change for change in replayed[0].changes}
        assert set(changes) == {"temperature", "label", "weights"}
        assert (changes["temperature"].id, changes["temperature"].version) == ("var_temperature_0123abcd", 7)
        assert changes["temperature"].value.float_value == 0.5  # a small import carries its values
        assert changes["weights"].version == 41
        set_value(stub, session_id, "temperature", pb.Value(float_value=0.25))
        live = reader.next()
        assert live is not None
        assert (live.revision, live.kind, live.changes[0].version) == (7, pb.EVENT_KIND_UPDATED, 8)
    finally:
        reader.close()


def test_watch_from_zero_says_history_gone_then_replays_the_import(stub, session_id):
    stub.ImportSession(import_request(session_id, three_vars(), revision=5))
    reader = EventReader(stub, session_id, from_revision=0)
    try:
        replayed = reader.until_caught_up()
        assert [e.kind for e in replayed] == [pb.EVENT_KIND_HISTORY_GONE, pb.EVENT_KIND_IMPORTED]
        assert replayed[1].revision == 6
    finally:
        reader.close()


def test_after_an_import_updates_continue_the_versions_and_keep_the_constraints(stub, session_id):
    stub.ImportSession(import_request(session_id, three_vars(), revision=5))
    response = set_value(stub, session_id, "temperature", pb.Value(float_value=0.9))
    assert (response.version, response.revision) == (8, 7)
    error = rpc_error(
        stub.SetVariable,
        pb.SetVariableRequest(
            session_id=session_id, name_or_id="temperature", value=pb.Value(float_value=1.5)
        ),
    )
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT)
    assert "above maximum" in error.details()
    assert set_value(stub, session_id, "label", pb.Value(string_value="ZZ9"), expected_version=0).version == 1
    assert get(stub, session_id, "temperature").value.float_value == 0.9


def test_a_version_past_ten_to_the_fourteenth_stays_a_whole_number(stub, session_id):
    """Lua's tostring writes such numbers with an exponent; the stored record must not."""
    big = 10**15
    stub.ImportSession(import_request(session_id, [_with(_GOOD, version=big)]))
    assert set_value(stub, session_id, "x", pb.Value(float_value=0.5)).version == big + 1
    assert set_value(stub, session_id, "x", pb.Value(float_value=0.25)).version == big + 2
    assert get(stub, session_id, "x").version == big + 2


def test_registering_the_same_definition_after_an_import_is_idempotent(stub, session_id):
    stub.ImportSession(import_request(session_id, three_vars(), revision=5))
    request = pb.RegisterVariableRequest(
        session_id=session_id,
        name="temperature",
        type=pb.VARIABLE_TYPE_FLOAT,
        value=pb.Value(float_value=0.1),
        constraints=pb.Constraints(min=0, max=1),
        metadata={"owner": "me"},  # without the migrated_* keys the client added on import
        description="sampling temperature",
    )
    response = stub.RegisterVariable(request)
    assert (response.created, response.variable.id) == (False, "var_temperature_0123abcd")
    assert (response.variable.version, response.variable.value.float_value) == (7, 0.5)
    request.description = "another description"
    assert_status(rpc_error(stub.RegisterVariable, request), grpc.StatusCode.ALREADY_EXISTS)
    assert revision(stub, session_id) == 6


# -- retries and existing sessions ---------------------------------------------------------------


def test_the_same_import_again_changes_nothing(stub, session_id):
    first = stub.ImportSession(import_request(session_id, three_vars()))
    again = stub.ImportSession(import_request(session_id, three_vars()))
    assert (again.imported, again.digest, again.session.revision) == (False, first.digest, 6)
    assert again.session.variable_count == 3
    assert revision(stub, session_id) == 6


def test_an_import_onto_a_session_with_other_content_is_already_exists(stub, session_id):
    stub.ImportSession(import_request(session_id, three_vars()))
    before = stub.ListVariables(pb.ListVariablesRequest(session_id=session_id))
    other = three_vars()
    other[0].value.float_value = 0.75
    error = rpc_error(stub.ImportSession, import_request(session_id, other))
    assert_status(
        error,
        grpc.StatusCode.ALREADY_EXISTS,
        f"session '{session_id}' already exists on the bridge; an import creates a new session",
    )
    assert stub.ListVariables(pb.ListVariablesRequest(session_id=session_id)) == before
    assert revision(stub, session_id) == 6


def test_an_import_onto_a_written_session_is_already_exists(stub, session_id, redis_url):
    create_session(stub, session_id)
    register_int(stub, session_id, "x")
    error = rpc_error(stub.ImportSession, import_request(session_id, three_vars()))
    assert_status(error, grpc.StatusCode.ALREADY_EXISTS)
    assert [v.name for v in stub.ListVariables(pb.ListVariablesRequest(session_id=session_id)).variables] == [
        "x"
    ]
    assert staging_keys(redis_url, session_id) == []


def test_an_import_into_a_session_opened_but_never_written(stub, session_id):
    opened = create_session(stub, session_id, metadata={"a": "b"})
    response = stub.ImportSession(import_request(session_id, three_vars(), metadata={"c": "d"}))
    assert response.imported
    assert (response.session.revision, response.session.variable_count) == (6, 3)
    assert response.session.created_at == opened.created_at
    assert dict(response.session.metadata) == {"c": "d"}
    assert get(stub, session_id, "temperature").version == 7


# -- large imports: staged in chunks -------------------------------------------------------------


@pytest.fixture
def chunked_stub(frontend_factory):
    server = frontend_factory(import_chunk_size=100)
    with grpc.insecure_channel(server.target) as channel:
        yield pb_grpc.UnifiedBridgeStub(channel), server


def test_a_large_import_is_staged_in_chunks_and_kept_whole(chunked_stub, session_id, redis_url):
    stub, _ = chunked_stub
    sent = [int_var(f"n{i}", i, version=i % 5) for i in range(1200)]
    response = stub.ImportSession(import_request(session_id, sent, revision=41))
    assert response.imported
    assert (response.session.revision, response.session.variable_count) == (42, 1200)
    listed = stub.ListVariables(pb.ListVariablesRequest(session_id=session_id)).variables
    assert {(v.id, v.name, v.value.integer_value, v.version) for v in listed} == {
        (v.id, v.name, v.value.integer_value, v.version) for v in sent
    }
    assert staging_keys(redis_url, session_id) == []
    reader = EventReader(stub, session_id, from_revision=41)
    try:
        replayed = reader.until_caught_up()
        assert [(e.revision, e.kind) for e in replayed] == [(42, pb.EVENT_KIND_IMPORTED)]
        changes = replayed[0].changes
        assert [(c.id, c.name, c.version) for c in changes] == [(v.id, v.name, v.version) for v in sent]
        assert not any(c.HasField("value") for c in changes)  # a staged import's event omits values
    finally:
        reader.close()
    again = stub.ImportSession(import_request(session_id, sent, revision=41))
    assert (again.imported, again.session.revision) == (False, 42)
    assert staging_keys(redis_url, session_id) == []
    assert set_value(stub, session_id, "n7", pb.Value(integer_value=-1)).version == 3


def test_a_staged_import_that_finds_the_session_written_meanwhile_leaves_nothing(
    chunked_stub, session_id, redis_url
):
    stub, server = chunked_stub
    store = server.server.store
    importer = store._importer
    real_stage = importer._scripts.import_stage
    calls = []

    async def stage_then_interfere(keys, args, rest=()):
        calls.append(len(rest))
        result = await real_stage(keys, args, rest)
        if len(calls) == 2:  # another program creates and writes the session between two chunks
            await store.create_session(session_id, None, None)
            await store.register(session_id, "other", VariableType.INTEGER, lambda _t: 1, None, None, "")
        return result

    importer._scripts = dataclasses.replace(importer._scripts, import_stage=stage_then_interfere)
    sent = [int_var(f"n{i}", i) for i in range(450)]
    error = rpc_error(stub.ImportSession, import_request(session_id, sent))
    assert_status(error, grpc.StatusCode.ALREADY_EXISTS)
    assert len(calls) == 5
    assert staging_keys(redis_url, session_id) == []
    listed = stub.ListVariables(pb.ListVariablesRequest(session_id=session_id)).variables
    assert [v.name for v in listed] == ["other"]
    assert revision(stub, session_id) == 1


# -- validation: a clear error naming the variable, and nothing written --------------------------


def _with(variable: pb.Variable, **changes) -> pb.Variable:
    copy = pb.Variable()
    copy.CopyFrom(variable)
    for field, value in changes.items():
        if isinstance(value, pb.Constraints | pb.Value):
            getattr(copy, field).CopyFrom(value)
        elif isinstance(value, dict):
            getattr(copy, field).update(value)
        else:
            setattr(copy, field, value)
    return copy


def _at(variable: pb.Variable, field: str, time_ms: int) -> pb.Variable:
    copy = _with(variable)
    getattr(copy, field).FromMilliseconds(time_ms)
    return copy


_GOOD = float_var("x")

VALIDATION_CASES = {
    "id of another form": ([_with(_GOOD, id="x_0123abcd")], "variable 'x': id 'x_0123abcd' is not an id"),
    "id in upper case hex": ([_with(_GOOD, id="var_x_0123ABCD")], "variable 'x': id 'var_x_0123ABCD'"),
    "id of another name": ([_with(_GOOD, id="var_y_0123abcd")], "variable 'x': id 'var_y_0123abcd'"),
    "no id": ([_with(_GOOD, id="")], "variable 'x': an id is required"),
    "name like an id": (
        [_with(_GOOD, name="var_a_0123abcd", id="var_var_a_0123abcd_0123abcd")],
        "variable 'var_a_0123abcd': invalid variable name",
    ),
    "bad name": ([_with(_GOOD, name="a b", id="var_a b_0123abcd")], "variable 'a b'"),
    "duplicate name": (
        [_GOOD, float_var("y"), _with(_GOOD, id="var_x_99999999")],
        "variable 'x': the name appears twice (with different ids)",
    ),
    "duplicate id": (
        [_GOOD, float_var("y"), _with(_GOOD, value=pb.Value(float_value=0.25))],
        "variable 'x': id 'var_x_0123abcd' appears twice",
    ),
    "invalid value": (
        [_with(_GOOD, value=pb.Value(float_value=1.5))],
        "variable 'x': value 1.5 is above maximum",
    ),
    "value of another type": ([_with(_GOOD, value=pb.Value(string_value="abc"))], "variable 'x':"),
    "no value": (
        [pb.Variable(id="var_x_0123abcd", name="x", type=pb.VARIABLE_TYPE_FLOAT)],
        "value is required",
    ),
    "no type": (
        [pb.Variable(id="var_x_0123abcd", name="x", value=pb.Value(float_value=1))],
        "variable 'x': unknown variable type",
    ),
    "bad constraint": (
        [_with(_GOOD, constraints=pb.Constraints(min=2, max=1))],
        "variable 'x':",
    ),
    "constraint of another type": (
        [_with(_GOOD, constraints=pb.Constraints(pattern="^a$"))],
        "variable 'x':",
    ),
    "bad metadata": ([_with(_GOOD, metadata={"": "v"})], "variable 'x': metadata keys must not be empty"),
    "version too large": ([_with(_GOOD, version=2**60)], "variable 'x': version"),
    "updated before 1970": ([_at(_GOOD, "updated_at", -1000)], "variable 'x': updated_at is before 1970"),
    "created before 1970": ([_at(_GOOD, "created_at", -1)], "variable 'x': created_at is before 1970"),
}


@pytest.mark.parametrize("case", list(VALIDATION_CASES))
def test_an_invalid_variable_is_rejected_by_name_and_nothing_is_written(stub, session_id, redis_url, case):
    variables, expected = VALIDATION_CASES[case]
    error = rpc_error(stub.ImportSession, import_request(session_id, variables))
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT)
    assert error.details().startswith("import rejected: ")
    assert expected in error.details()
    assert stored_keys(redis_url, session_id) == []


def test_limits_are_resource_exhausted_and_nothing_is_written(frontend_factory, session_id, redis_url):
    server = frontend_factory(max_variables_per_session=3, max_value_bytes=64, max_description_length=10)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        too_many = [float_var(f"v{i}") for i in range(4)]
        error = rpc_error(stub.ImportSession, import_request(session_id, too_many))
        assert_status(
            error,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "import rejected: 4 variables, above the limit of 3 per session",
        )
        big = pb.Variable(
            id="var_s_0123abcd",
            name="s",
            type=pb.VARIABLE_TYPE_STRING,
            value=pb.Value(string_value="a" * 100),
        )
        error = rpc_error(stub.ImportSession, import_request(session_id, [big]))
        assert_status(error, grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert error.details().startswith("import rejected: variable 's': value of s is ")
        wordy = _with(_GOOD, description="far too long a description")
        error = rpc_error(stub.ImportSession, import_request(session_id, [wordy]))
        assert_status(error, grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert "variable 'x': description is" in error.details()
    assert stored_keys(redis_url, session_id) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"session_id": ""}, "import rejected: a session id is required"),
        ({"session_id": "a\nb"}, "import rejected: session 'a\\nb': "),
        ({"ttl_seconds": 10**8}, "ttl 100000000 s is above the maximum"),
        ({"metadata": {"": "x"}}, "metadata keys must not be empty"),
        ({"revision": 2**60}, "revision"),
    ],
)
def test_an_invalid_session_is_rejected(stub, session_id, redis_url, fields, expected):
    values = {"session_id": session_id, "revision": 1, "variables": [_GOOD], **fields}
    error = rpc_error(stub.ImportSession, pb.ImportSessionRequest(**values))
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT)
    assert expected in error.details()
    assert stored_keys(redis_url, session_id) == []


# -- other storage: a Redis Cluster, the embedded store ------------------------------------------


def _import_and_check(stub, session_id: str) -> None:
    small = stub.ImportSession(import_request(session_id, three_vars(), revision=2))
    assert (small.imported, small.session.revision) == (True, 3)
    large_id = f"{session_id}_large"
    sent = [int_var(f"n{i}", i, version=4) for i in range(250)]
    large = stub.ImportSession(import_request(large_id, sent, revision=0))
    assert (large.imported, large.session.revision, large.session.variable_count) == (True, 1, 250)
    assert not stub.ImportSession(import_request(large_id, sent, revision=0)).imported
    assert set_value(stub, large_id, "n9", pb.Value(integer_value=1)).version == 5
    reader = EventReader(stub, session_id, from_revision=2)
    try:
        replayed = reader.until_caught_up()
        assert [(e.revision, e.kind, len(e.changes)) for e in replayed] == [(3, pb.EVENT_KIND_IMPORTED, 3)]
        set_value(stub, session_id, "temperature", pb.Value(float_value=0.1))
        live = reader.next()
        assert live is not None
        assert (live.revision, live.changes[0].version) == (4, 8)
    finally:
        reader.close()
    assert get(stub, session_id, "weights").version == 41


@pytest.mark.real_redis
def test_import_on_a_redis_cluster(redis_cluster_url, frontend_factory, session_id):
    server = frontend_factory(redis_url=redis_cluster_url, redis_cluster=True, import_chunk_size=100)
    with grpc.insecure_channel(server.target) as channel:
        _import_and_check(pb_grpc.UnifiedBridgeStub(channel), session_id)
    with redis.RedisCluster.from_url(redis_cluster_url) as client:
        assert list(client.scan_iter(match=f"ub:2:{{{session_id}_large}}:import:*")) == []


def test_import_on_the_embedded_store(frontend_factory, session_id):
    server = frontend_factory(redis_url=None, import_chunk_size=100)
    with grpc.insecure_channel(server.target) as channel:
        _import_and_check(pb_grpc.UnifiedBridgeStub(channel), session_id)
