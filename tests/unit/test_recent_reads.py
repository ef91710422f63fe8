"""Recently read variables, kept by the exact bytes of their record, within a byte budget."""

from __future__ import annotations

from bridge_server.model import Definition, VariableRecord
from bridge_server.recent_reads import RecentReads
from unified_bridge.types import VariableType

_DEFINITION = Definition("var_x_0000abcd", "x", VariableType.INTEGER, {}, {}, "", 0)


def _record(value: int) -> VariableRecord:
    return VariableRecord(_DEFINITION, value, value, 0)


def test_a_record_read_again_with_the_same_bytes_is_the_same_object() -> None:
    recent = RecentReads(1 << 20)
    first = _record(1)
    recent.remember(("s", "var_x_0000abcd"), b"1 0 integer 0\n\x01", first)
    assert recent.get(("s", "var_x_0000abcd"), b"1 0 integer 0\n\x01") is first


def test_other_bytes_another_session_or_another_id_find_nothing() -> None:
    recent = RecentReads(1 << 20)
    recent.remember(("s", "var_x_0000abcd"), b"1 0 integer 0\n\x01", _record(1))
    assert recent.get(("s", "var_x_0000abcd"), b"2 0 integer 0\n\x02") is None  # written since
    assert recent.get(("t", "var_x_0000abcd"), b"1 0 integer 0\n\x01") is None
    assert recent.get(("s", "var_x_0000abce"), b"1 0 integer 0\n\x01") is None


def test_a_newer_read_replaces_the_older_and_counts_once() -> None:
    recent = RecentReads(1 << 20)
    recent.remember(("s", "id"), b"a" * 100, _record(1))
    second = _record(2)
    recent.remember(("s", "id"), b"b" * 100, second)
    assert recent.size_bytes == 200
    assert recent.get(("s", "id"), b"b" * 100) is second


def test_the_budget_bounds_what_is_kept() -> None:
    recent = RecentReads(1600)  # entries of at most 100 bytes (twice a 50-byte record)
    recent.remember(("s", "big"), b"x" * 51, _record(1))
    assert recent.get(("s", "big"), b"x" * 51) is None  # above a sixteenth of the budget
    for i in range(20):
        recent.remember(("s", f"id{i}"), b"y" * 50, _record(i))
        assert recent.size_bytes <= 1600
    assert recent.get(("s", "id19"), b"y" * 50) is not None


def test_a_budget_of_zero_keeps_nothing() -> None:
    recent = RecentReads(0)
    recent.remember(("s", "id"), b"1 0 integer 0\n\x01", _record(1))
    assert recent.get(("s", "id"), b"1 0 integer 0\n\x01") is None
    assert recent.size_bytes == 0
