"""Session ids are written into keys so that no id, however crafted, reaches another session's keys."""

from __future__ import annotations

import fnmatch

from hypothesis import given
from hypothesis import strategies as st

from bridge_server.keys import (
    import_staging_keys,
    session_id_from_key,
    session_key_tag,
    session_keys,
    session_scan_pattern,
)
from unified_bridge.types import validate_session_id

# Printable: no control, format, surrogate, private-use, unassigned or separator characters but " ".
_printable = st.characters(
    blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"), whitelist_characters=" "
)
printable_ids = st.text(_printable, min_size=1, max_size=64).filter(
    lambda text: text.isprintable() and text.strip() == text
)


def test_ids_of_the_old_alphabet_are_written_as_they_are() -> None:
    for session_id in ["s1", "a.b-c_d", "550e8400-e29b-41d4-a716-446655440000", "A" * 128]:
        assert session_keys("ub", session_id).session == f"ub:2:{{{session_id}}}:session"


def test_ids_users_write_are_encoded_into_the_hash_tag() -> None:
    assert session_keys("ub", "tenant:42").vars == "ub:2:{tenant%3A42}:vars"
    assert session_keys("ub", "user/7").channel == "ub:2:{user%2F7}:events"
    assert session_keys("ub", "50%").names == "ub:2:{50%25}:names"
    assert session_keys("ub", "é").log == "ub:2:{%C3%A9}:log"
    assert import_staging_keys("ub", "a:b", "d1").vars == "ub:2:{a%3Ab}:import:d1:vars"


@given(printable_ids)
def test_the_tag_holds_no_hash_tag_separator_or_glob_character(session_id: str) -> None:
    validate_session_id(session_id)
    tag = session_key_tag(session_id)
    assert not set(tag) & set("{}:*?[]\\ ")
    assert tag.isascii()


@given(printable_ids)
def test_the_id_comes_back_from_its_key(session_id: str) -> None:
    key = session_keys("ub", session_id).session
    assert fnmatch.fnmatchcase(key, session_scan_pattern("ub"))
    assert session_id_from_key("ub", key) == session_id


@given(printable_ids, printable_ids)
def test_two_ids_never_share_a_key(first: str, second: str) -> None:
    if first != second:
        assert set(session_keys("ub", first).with_channel).isdisjoint(session_keys("ub", second).with_channel)
