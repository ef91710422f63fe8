"""The IMPORTED event the import scripts write decodes, with and without values (on fakeredis's Lua)."""

from __future__ import annotations

import fakeredis
import pytest

from bridge_server.config import Settings
from bridge_server.convert import event_to_proto
from bridge_server.events import EventKind, decode_event
from bridge_server.importer import ImportedVariable
from bridge_server.model import Definition
from bridge_server.store import VariableStore
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.types import VariableType, decode_value


def _variable(name: str, value: int, version: int) -> ImportedVariable:
    return ImportedVariable(
        id=f"var_{name}_{value:08x}",
        name=name,
        type_number=pb.VARIABLE_TYPE_INTEGER,
        read_value=lambda _type: value,
        constraints={},
        metadata={},
        description="",
        version=version,
        created_at_ms=None,
        updated_at_ms=None,
    )


@pytest.fixture
async def make_store():
    clients = []

    def make(chunk_size: int) -> VariableStore:
        redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(version=(7, 0)), version=(7, 0))
        clients.append(redis)
        return VariableStore(redis, Settings(import_chunk_size=chunk_size))

    yield make
    for redis in clients:
        await redis.aclose()


async def _logged_event(store: VariableStore, session_id: str, revision: int, count: int):
    variables = [_variable(f"v{i}", i, version=i + 10) for i in range(count)]
    info, imported = await store.import_session(session_id, None, {"k": "v"}, revision, variables, "d" * 64)
    assert imported
    assert (info.revision, info.variable_count, info.metadata) == (revision + 1, count, {"k": "v"})
    raws = await store.read_log(session_id, 0)
    assert len(raws) == 1
    return decode_event(raws[0])


async def test_an_inline_import_event_lists_every_variable_with_its_value(make_store):
    event = await _logged_event(make_store(chunk_size=10), "s", revision=4, count=3)
    assert (event.revision, event.kind) == (5, EventKind.IMPORTED)
    assert [(c.id, c.name, c.type, c.version) for c in event.changes] == [
        (f"var_v{i}_{i:08x}", f"v{i}", "integer", i + 10) for i in range(3)
    ]
    assert [decode_value(VariableType.INTEGER, c.value) for c in event.changes] == [0, 1, 2]
    message = event_to_proto(event)
    assert message.kind == pb.EVENT_KIND_IMPORTED
    assert [c.value.integer_value for c in message.changes] == [0, 1, 2]


async def test_a_staged_import_event_lists_every_variable_without_values(make_store):
    store = make_store(chunk_size=2)
    event = await _logged_event(store, "s", revision=0, count=5)
    assert (event.revision, event.kind) == (1, EventKind.IMPORTED)
    assert [(c.name, c.version, c.value) for c in event.changes] == [
        (f"v{i}", i + 10, None) for i in range(5)
    ]
    message = event_to_proto(event)
    assert [(c.name, c.HasField("value")) for c in message.changes] == [(f"v{i}", False) for i in range(5)]
    record = await store.get("s", "v3")
    assert (record.value, record.version) == (3, 13)


def test_a_value_length_below_minus_two_is_not_an_event():
    with pytest.raises(ValueError, match="bad value length"):
        decode_event(b"UB1 1 7 0 1\n0 var_x_00000000 x integer -3\n")
    deleted = decode_event(b"UB1 2 3 0 1\n4 var_x_00000000 x integer -1\n")
    assert (deleted.kind, deleted.changes[0].value) == (EventKind.DELETED, None)


def test_same_shape_ignores_exactly_the_migration_metadata_keys():
    def definition(**metadata: str) -> Definition:
        return Definition("var_x_00000000", "x", VariableType.INTEGER, {}, metadata, "", 0)

    moved = definition(owner="me", migrated_from="local", migrated_at="2026-01-01")
    assert moved.same_shape_as(definition(owner="me"))
    assert definition(owner="me").same_shape_as(moved)
    assert not moved.same_shape_as(definition(owner="you"))
    assert not definition(owner="me", migrated_by="x").same_shape_as(definition(owner="me"))
