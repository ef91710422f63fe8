"""Sentinel failover under writes: the master is SIGKILLed (or demoted), a frontend started with
--redis-sentinels follows the new master, and with --redis-wait-replicas 1 no acknowledged write is
lost; without it, only writes acknowledged after the replica's last confirmed offset may be.

Each write registers a variable of its own, so every acknowledged write can be looked for after the
failover. The frontend waits for one replica after each write (WAIT): a write acknowledged is on the
replica, and the replica is what Sentinel promotes (the only one). A write whose call failed is an
unknown outcome: it may be there or not, but it is never reported as a success.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from bridge_server.testing import FrontendProcess
from tests.failover.flow import (
    FailoverWrites,
    Watcher,
    end_writes,
    poll,
    readiness,
    replication_offsets,
    subscribed_on,
    uncached_session,
)
from tests.failover.sentinels import (
    MASTER_NAME,
    SentinelGroup,
    sentinel_group,
    sentinel_tools_available,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.failover,
    pytest.mark.skipif(not sentinel_tools_available(), reason="needs redis-server to run Sentinels"),
]

# Acknowledged writes before the kill, and after it (the proof that writes resumed).
BEFORE, AFTER = 40, 40
DEADLINE = 90.0


def _sentinel_frontend(group: SentinelGroup, *flags: str) -> FrontendProcess:
    """A frontend that finds its master through the group's Sentinels, quick to notice an outage."""
    return FrontendProcess(
        None,
        *("--redis-sentinels", group.sentinels, "--redis-sentinel-master", MASTER_NAME),
        *("--redis-timeout-seconds", "2", "--health-check-interval-seconds", "0.2"),
        *flags,
    )


def _kill_the_master(group: SentinelGroup, frontend: FrontendProcess) -> None:
    old_master = group.master.port
    group.master.crash()  # SIGKILL
    poll(lambda: readiness(frontend.target) == "NOT_SERVING", "readiness to drop", DEADLINE)
    poll(lambda: group.master_port() not in (None, old_master), "Sentinel to promote", DEADLINE)
    # Back, empty, as a replica of the new master (Sentinel reconfigures it): WAIT 1 can be met again.
    group.master.start()


def _ask_sentinel_to_fail_over(group: SentinelGroup, frontend: FrontendProcess) -> None:
    # The old master lives on and becomes a replica: connections to it stay open until they fail.
    del frontend
    old_master = group.master.port
    with redis.Redis(port=group.sentinel_ports[0], socket_timeout=5) as sentinel:
        sentinel.sentinel_failover(MASTER_NAME)
    poll(lambda: group.master_port() not in (None, old_master), "Sentinel to promote", DEADLINE)


@pytest.mark.parametrize("fail_over", [_kill_the_master, _ask_sentinel_to_fail_over], ids=["kill", "demote"])
def test_a_sentinel_failover_loses_no_acknowledged_write(
    tmp_path, session_id: str, fail_over: Callable[[SentinelGroup, FrontendProcess], None]
) -> None:
    with (
        sentinel_group(tmp_path) as group,
        _sentinel_frontend(group, "--redis-wait-replicas", "1", "--redis-wait-timeout-ms", "500") as frontend,
        uncached_session(frontend.target, session_id) as ctx,
    ):
        assert readiness(frontend.target) == "SERVING"
        watcher = Watcher(frontend.target, session_id).start()
        writes = FailoverWrites(frontend.target, session_id).start()
        try:
            writes.wait_for_acknowledged(BEFORE, DEADLINE)
            fail_over(group, frontend)
            at_failover = writes.acknowledged_count()
            new_master = group.master_port()
            assert new_master is not None
            poll(lambda: subscribed_on(new_master, session_id), "events to follow the new master", DEADLINE)
            writes.wait_for_acknowledged(at_failover + AFTER, DEADLINE)
            poll(lambda: readiness(frontend.target) == "SERVING", "readiness to be SERVING", DEADLINE)
        finally:
            writes.stop()
        final = end_writes(ctx, watcher, DEADLINE)

    assert not writes.unexpected, writes.unexpected
    lost = writes.acknowledged - final
    assert not lost, f"acknowledged writes lost with WAIT on: {sorted(lost)}"
    assert final <= writes.acknowledged | writes.unknown, final - writes.acknowledged - writes.unknown
    watcher.check(final)
    print(
        f"acknowledged {len(writes.acknowledged)}, unknown {len(writes.unknown)} (of which "
        f"{len(writes.unknown & final)} applied), watcher resyncs {watcher.resyncs}, "
        f"{time.monotonic() - writes.started:.1f} s"
    )


def test_without_wait_a_failover_loses_only_what_the_replica_lacked(tmp_path, session_id: str) -> None:
    """Asynchronous replication: writes acknowledged before the replica confirmed the master's
    offset survive; those after it are the loss window (counted)."""
    with (
        sentinel_group(tmp_path) as group,
        _sentinel_frontend(group) as frontend,
        uncached_session(frontend.target, session_id) as ctx,
    ):
        watcher = Watcher(frontend.target, session_id).start()
        writes = FailoverWrites(frontend.target, session_id).start()
        try:
            writes.wait_for_acknowledged(BEFORE, DEADLINE)
            kept = writes.acknowledged_so_far()
            offset, _ = replication_offsets(group.master.port)  # read after `kept`: covers all of it
            poll(lambda: replication_offsets(group.master.port)[1] >= offset, "the replica", DEADLINE)
            old_master = group.master.port
            group.master.crash()  # SIGKILL, while the writer goes on
            at_kill = writes.acknowledged_count()
            poll(lambda: group.master_port() not in (None, old_master), "Sentinel to promote", DEADLINE)
            writes.wait_for_acknowledged(at_kill + AFTER, DEADLINE)
            poll(lambda: readiness(frontend.target) == "SERVING", "readiness to be SERVING", DEADLINE)
        finally:
            writes.stop()
        final = end_writes(ctx, watcher, DEADLINE)

    assert not writes.unexpected, writes.unexpected
    assert writes.unknown, "no call failed while the master was down: the kill was not under writes"
    assert kept <= final, f"writes the replica had acknowledged were lost: {sorted(kept - final)}"
    lost = writes.acknowledged - final
    assert final <= writes.acknowledged | writes.unknown, final - writes.acknowledged - writes.unknown
    watcher.check(final)
    print(f"acknowledged {len(writes.acknowledged)}, {len(lost)} lost in the asynchronous window")
