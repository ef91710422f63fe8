"""Reads refresh a session's TTL only now and then; the tracker decides when."""

from __future__ import annotations

import pytest

from bridge_server import activity
from bridge_server.activity import ActivityTracker


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(activity.time, "monotonic", lambda: now[0])
    return now


def test_an_unknown_session_is_due(clock):
    assert ActivityTracker(10, 100).due("s")


def test_a_refresh_waits_the_smaller_of_the_setting_and_a_quarter_ttl(clock):
    tracker = ActivityTracker(10, 100)
    tracker.refreshed("long", ttl_seconds=3600)
    tracker.refreshed("short", ttl_seconds=2)
    clock[0] += 0.6
    assert not tracker.due("long")
    assert tracker.due("short")  # 2 s / 4 = 0.5 s
    clock[0] += 9.5
    assert tracker.due("long")


def test_a_refresh_without_a_known_ttl_keeps_the_interval_it_had(clock):
    tracker = ActivityTracker(10, 100)
    tracker.refreshed("s")
    assert tracker.due("s")  # never learned the TTL: the next read refreshes and learns it
    tracker.refreshed("s", ttl_seconds=3600)
    tracker.refreshed("s")
    clock[0] += 5
    assert not tracker.due("s")


def test_forgetting_and_the_size_bound_only_make_refreshes_happen_sooner(clock):
    tracker = ActivityTracker(10, 2)
    for name in ("a", "b", "c"):
        tracker.refreshed(name, ttl_seconds=3600)
    assert tracker.due("a")  # dropped when the bound was reached
    assert not tracker.due("c")
    tracker.forget("c")
    assert tracker.due("c")
