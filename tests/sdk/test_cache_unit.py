"""The near cache on its own: the in-flight race, read-your-writes, clears, TTL, stats."""

from __future__ import annotations

import pytest

from unified_bridge import _cache
from unified_bridge._cache import MISS, NearCache


@pytest.fixture
def cache() -> NearCache:
    c = NearCache(ttl=60)
    c.start_serving(0)
    return c


def test_fill_then_hit_by_name_and_id(cache: NearCache) -> None:
    assert cache.fill(cache.begin_read(), "var_x_1", "x", 0, 10)
    assert cache.lookup("x") == 10
    assert cache.lookup("var_x_1") == 10
    assert cache.stats().as_dict() == {"hits": 2, "misses": 0, "hit_rate": 1.0, "invalidations": 0, "size": 1}


def test_nothing_is_served_or_filled_before_the_stream_is_caught_up() -> None:
    cache = NearCache(ttl=60)
    token = cache.begin_read()
    assert not cache.fill(token, "var_x_1", "x", 0, 10)
    cache.start_serving(0)
    assert not cache.fill(token, "var_x_1", "x", 0, 10)  # began before the stream was caught up
    assert cache.fill(cache.begin_read(), "var_x_1", "x", 0, 10)


def test_read_in_flight_during_an_update_event_does_not_fill(cache: NearCache) -> None:
    token = cache.begin_read()
    cache.apply_change("var_x_1", "x", 1, lambda: 11)  # arrives while the read is in flight
    assert not cache.fill(token, "var_x_1", "x", 0, 10)  # the read returned version 0: stale
    assert cache.lookup("x") is MISS


def test_read_in_flight_during_a_delete_does_not_fill_even_with_a_new_version(cache: NearCache) -> None:
    token = cache.begin_read()
    cache.invalidate("var_x_1", "x")
    assert not cache.fill(token, "var_x_1", "x", 5, 10)
    assert not cache.fill(token, "var_x_2", "x", 0, 10, requested="x")


def test_a_read_that_returns_the_announced_version_may_fill(cache: NearCache) -> None:
    token = cache.begin_read()
    cache.apply_change("var_x_1", "x", 1, lambda: 11)
    assert cache.fill(token, "var_x_1", "x", 1, 11)
    assert cache.lookup("x") == 11


def test_update_event_refreshes_an_entry_with_its_value(cache: NearCache) -> None:
    cache.fill(cache.begin_read(), "var_x_1", "x", 0, 10)
    cache.apply_change("var_x_1", "x", 1, lambda: 11)
    assert cache.lookup("x") == 11
    cache.apply_change("var_x_1", "x", 1, lambda: 11)  # a duplicate changes nothing
    assert cache.stats().invalidations == 1


def test_write_through_is_read_your_writes_and_late_events_do_not_regress_it(cache: NearCache) -> None:
    cache.fill(cache.begin_read(), "var_x_1", "x", 0, 10)
    reader_token = cache.begin_read()  # another thread's read, in flight during the write
    token = cache.begin_read()
    cache.write_through(token, "var_x_1", "x", 2, 12)
    assert cache.lookup("x") == 12
    assert not cache.fill(reader_token, "var_x_1", "x", 1, 11)  # older than our write
    cache.apply_change("var_x_1", "x", 1, lambda: 11)  # someone else's earlier write, late
    assert cache.lookup("x") == 12


def test_write_through_refused_when_a_newer_version_was_announced_meanwhile(cache: NearCache) -> None:
    token = cache.begin_read()
    cache.apply_change("var_x_1", "x", 3, lambda: 13)
    cache.write_through(token, "var_x_1", "x", 2, 12)
    assert cache.lookup("x") is MISS


def test_stream_loss_empties_and_stops_the_cache(cache: NearCache) -> None:
    cache.fill(cache.begin_read(), "var_x_1", "x", 0, 10)
    token = cache.begin_read()
    cache.stop_serving()
    assert cache.lookup("x") is MISS
    cache.start_serving(0)
    assert not cache.fill(token, "var_x_1", "x", 0, 10)


def test_clear_refuses_fills_in_flight(cache: NearCache) -> None:
    token = cache.begin_read()
    cache.clear()
    assert not cache.fill(token, "var_x_1", "x", 0, 10)


def test_ttl_is_a_backstop(cache: NearCache, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(_cache, "_monotonic", lambda: now[0])
    cache.fill(cache.begin_read(), "var_x_1", "x", 0, 10)
    now[0] += 59.9
    assert cache.lookup("x") == 10
    now[0] += 0.2
    assert cache.lookup("x") is MISS


def test_reregistered_name_drops_the_old_id(cache: NearCache) -> None:
    cache.fill(cache.begin_read(), "var_x_1", "x", 4, "old")
    cache.invalidate("var_x_2", "x")  # x now names another variable
    assert cache.lookup("var_x_1") is MISS
    assert cache.lookup("x") is MISS


def test_mutable_values_are_handed_out_as_copies(cache: NearCache) -> None:
    cache.fill(cache.begin_read(), "var_e_1", "e", 0, [1.0, 2.0])
    cache.lookup("e").append(3.0)
    assert cache.lookup("e") == [1.0, 2.0]


def test_many_invalidations_stay_bounded(cache: NearCache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cache, "_MAX_STAMPS", 10)
    token = cache.begin_read()
    for i in range(50):
        cache.invalidate(f"var_v{i}_1", f"v{i}")
    assert len(cache._stamps) <= 12
    assert not cache.fill(token, "var_v0_1", "v0", 0, 1)  # forgotten stamps refuse conservatively


class Decoder:
    """A decode callable that counts its calls (decoding is the costly part of an event)."""

    def __init__(self, value: object = 11, error: Exception | None = None) -> None:
        self.value, self.error, self.calls = value, error, 0

    def __call__(self) -> object:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.value


def test_events_that_only_invalidate_are_not_decoded(cache: NearCache) -> None:
    decode = Decoder()
    cache.apply_change("var_x_1", "x", 1, decode)  # nothing cached for x
    cache.fill(cache.begin_read(), "var_y_1", "y", 2, 20)
    cache.write_through(cache.begin_read(), "var_y_1", "y", 3, 30)
    cache.apply_change("var_y_1", "y", 3, decode)  # our own write: already cached
    stopped = NearCache(ttl=60)
    stopped.apply_change("var_x_1", "x", 1, decode)  # not serving
    assert decode.calls == 0
    assert cache.lookup("y") == 30


def test_a_refresh_decodes_once(cache: NearCache) -> None:
    cache.fill(cache.begin_read(), "var_x_1", "x", 0, 10)
    decode = Decoder(11)
    cache.apply_change("var_x_1", "x", 1, decode)
    assert decode.calls == 1
    assert cache.lookup("x") == 11


def test_a_decode_failure_changes_nothing_and_propagates(cache: NearCache) -> None:
    cache.fill(cache.begin_read(), "var_x_1", "x", 0, 10)
    token = cache.begin_read()
    with pytest.raises(ValueError, match="corrupt"):
        cache.apply_change("var_x_1", "x", 1, Decoder(error=ValueError("corrupt")))
    assert cache.lookup("x") == 10  # the caller decides (SessionCore invalidates)
    assert cache.fill(token, "var_x_1", "x", 0, 10)  # no version was noted


# --- several values at one revision ----------------------------------------------------------


def test_a_snapshot_needs_every_value_settled_by_the_stream(cache: NearCache) -> None:
    cache.fill(cache.begin_read(), "var_a_1", "a", 0, 1, as_of=5)
    cache.fill(cache.begin_read(), "var_b_1", "b", 0, 2, as_of=5)
    assert cache.snapshot(["a", "b"]) is None  # read at revision 5, the stream has applied 0 so far
    cache.begin_batch()
    cache.end_batch(stream_revision=5)
    assert cache.snapshot(["a", "b"]) == {"a": 1, "b": 2}
    cache.fill(cache.begin_read(), "var_c_1", "c", 0, 3)  # a single read: its revision is unknown
    assert cache.snapshot(["a", "c"]) is None
    assert cache.snapshot(["a", "missing"]) is None


def test_no_snapshot_while_an_event_is_being_applied(cache: NearCache) -> None:
    cache.fill(cache.begin_read(), "var_a_1", "a", 0, 1, as_of=0)
    cache.fill(cache.begin_read(), "var_b_1", "b", 0, 1, as_of=0)
    cache.begin_batch()  # an atomic batch changing a and b arrives
    cache.apply_change("var_a_1", "a", 1, lambda: 2, as_of=1)
    assert cache.snapshot(["a", "b"]) is None  # a is new, b is not yet: never served half applied
    cache.apply_change("var_b_1", "b", 1, lambda: 2, as_of=1)
    cache.end_batch(stream_revision=1)
    assert cache.snapshot(["a", "b"]) == {"a": 2, "b": 2}


def test_the_stream_vouches_for_a_value_written_ahead_of_it(cache: NearCache) -> None:
    cache.write_through(cache.begin_read(), "var_a_1", "a", 1, 7, as_of=3)  # our write, revision 3
    assert cache.snapshot(["a"]) is None  # the stream is at 0: other changes up to 3 may be missing
    cache.begin_batch()
    cache.apply_change("var_a_1", "a", 1, lambda: 7, as_of=3)  # our own write's event
    cache.end_batch(stream_revision=3)
    assert cache.snapshot(["a"]) == {"a": 7}
