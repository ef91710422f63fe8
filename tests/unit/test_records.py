"""A variable's stored record, read back as the scripts write it, and the definition blob inside it."""

from __future__ import annotations

import pytest

from bridge_server.model import Definition, is_id_of, name_of_id
from bridge_server.records import decode_record
from unified_bridge.types import VariableType


def test_a_record_splits_into_header_definition_and_value():
    definition, value = b"\x94\x80\x80\xa0\x01", b"a value\nwith 0 1 integer 5\nin it"
    raw = b"12 1700000000000 integer 5\n" + definition + value
    record = decode_record(raw)
    assert (record.version, record.updated_at_ms, record.type) == (12, 1700000000000, "integer")
    assert (record.definition_blob, record.value_blob) == (definition, value)


def test_an_empty_value_and_an_empty_definition_are_kept_apart():
    record = decode_record(b"0 1 string 0\n")
    assert (record.definition_blob, record.value_blob) == (b"", b"")


@pytest.mark.parametrize("name", ["x", "temperature", "a.b-c_d", "var_x_0123abcd"])
def test_the_name_is_the_middle_of_the_id(name):
    var_id = f"var_{name}_89abcdef"
    assert is_id_of(var_id, name)
    assert name_of_id(var_id) == name


def test_a_definition_survives_its_blob():
    definition = Definition(
        id="var_t_0000ffff",
        name="t",
        type=VariableType.FLOAT,
        constraints={"min": 0.0, "max": 2.0},
        metadata={"owner": "tuning"},
        description="sampling temperature",
        created_at_ms=1_700_000_000_123,
    )
    blob = definition.to_blob()
    assert b"owner" in blob
    assert b"constraints" not in blob  # an array: no key names stored
    assert Definition.from_blob(definition.id, "float", blob) == definition
