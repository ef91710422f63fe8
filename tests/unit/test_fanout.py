"""The event hub rides out a pub/sub connection that is lost or being re-made: a subscription sent
meanwhile is tried again, and the reader task survives what redis-py raises in that window."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from bridge_server.events import LiveEvent
from bridge_server.fanout import IDLE, RESYNC, Delivery, EventHub, QueueBudget, Subscription


class FakeConnection:
    def __init__(self) -> None:
        self.is_connected = True
        self.disconnects = 0

    async def disconnect(self) -> None:
        self.disconnects += 1
        self.is_connected = False


class FlakyPubSub:
    """A pub/sub whose first commands and reads fail the ways redis-py's do during a reconnect."""

    def __init__(
        self, failing_subscribes: int, failing_reads: int, read_error: Exception | None = None
    ) -> None:
        self.failing_subscribes = failing_subscribes
        self.failing_reads = failing_reads
        self.read_error = read_error or RuntimeError(
            "read() called while another coroutine is already waiting"
        )
        self.connection: FakeConnection | None = None
        self.connection_pool = None
        self.connects = 0
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def connect(self) -> None:
        assert self.connection is not None
        self.connects += 1
        self.connection.is_connected = True

    async def ssubscribe(self, channel: str) -> None:
        if self.failing_subscribes:
            self.failing_subscribes -= 1
            raise RuntimeError("read() called while another coroutine is already waiting for incoming data")
        await self.messages.put({"type": "ssubscribe", "channel": channel.encode(), "data": 1})

    async def sunsubscribe(self, channel: str) -> None:
        return None

    async def get_message(self, timeout: float) -> dict[str, Any] | None:
        if self.failing_reads:
            self.failing_reads -= 1
            raise self.read_error
        try:
            return await asyncio.wait_for(self.messages.get(), timeout)
        except TimeoutError:
            return None

    async def aclose(self) -> None:
        return None


class FakeRedis:
    def __init__(self, pubsub: FlakyPubSub) -> None:
        self._pubsub = pubsub

    def pubsub(self) -> FlakyPubSub:
        return self._pubsub


def _hub(pubsub: FlakyPubSub, confirm_timeout: float = 5.0) -> EventHub:
    return EventHub(FakeRedis(pubsub), QueueBudget(100, 1 << 20, 1 << 24), confirm_timeout)


async def test_a_subscription_sent_during_a_reconnect_is_tried_again() -> None:
    pubsub = FlakyPubSub(failing_subscribes=2, failing_reads=0)
    hub = _hub(pubsub)
    try:
        subscription = await hub.subscribe("ub:{s}:events")
        assert pubsub.failing_subscribes == 0
        await pubsub.messages.put({"type": "smessage", "channel": b"ub:{s}:events", "data": b"UB1 event"})
        assert _data(await asyncio.wait_for(subscription.get(), 5)) == b"UB1 event"
    finally:
        await hub.close()


async def test_a_subscription_that_keeps_failing_is_redis_unreachable_in_time() -> None:
    hub = _hub(FlakyPubSub(failing_subscribes=10**6, failing_reads=0), confirm_timeout=0.3)
    with pytest.raises(RedisConnectionError, match="could not subscribe to session events"):
        await hub.subscribe("ub:{s}:events")
    await hub.close()


async def _one_failed_read_then_an_event(pubsub: FlakyPubSub) -> None:
    """Subscribe, fail the reader's next read, publish an event: the watcher is told to resync, then
    gets the event (after a second RESYNC, sent when the reader recovers)."""
    hub = _hub(pubsub)
    try:
        subscription = await hub.subscribe("ub:{s}:events")
        pubsub.failing_reads = 1
        assert await asyncio.wait_for(subscription.get(), 5) == RESYNC
        await pubsub.messages.put({"type": "smessage", "channel": b"ub:{s}:events", "data": b"UB1 later"})
        received = [_data(await asyncio.wait_for(subscription.get(), 5)) for _ in range(2)]
        assert received == [RESYNC, b"UB1 later"]
    finally:
        await hub.close()


async def test_the_reader_survives_a_read_that_races_a_reconnect_and_tells_watchers_to_resync() -> None:
    await _one_failed_read_then_an_event(FlakyPubSub(failing_subscribes=0, failing_reads=0))


async def test_a_reply_stolen_from_another_tasks_handshake_drops_the_connection_and_resyncs() -> None:
    pubsub = FlakyPubSub(0, 0, read_error=ResponseError("unknown subcommand 'SETINFO'"))
    pubsub.connection = FakeConnection()
    await _one_failed_read_then_an_event(pubsub)
    assert (pubsub.connection.disconnects, pubsub.connects) == (1, 1)  # a clean connection again


def _data(item: Delivery) -> bytes:
    return item.data if isinstance(item, LiveEvent) else item


async def test_every_watcher_of_a_channel_gets_the_same_event_decoded_once() -> None:
    pubsub = FlakyPubSub(failing_subscribes=0, failing_reads=0)
    hub = _hub(pubsub)
    try:
        watchers = [await hub.subscribe("ub:{s}:events") for _ in range(3)]
        event = b"UB1 7 2 1700000000000 1\n3 var_x_0000abcd x integer 1\n\x07"
        await pubsub.messages.put({"type": "smessage", "channel": b"ub:{s}:events", "data": event})
        received = [await asyncio.wait_for(watcher.get(), 5) for watcher in watchers]
        assert all(item is received[0] for item in received)  # one object: decoded, encoded once
        first = received[0]
        assert isinstance(first, LiveEvent)
        assert first.event is first.event
        assert (first.event.revision, first.event.changes[0].name) == (7, "x")
    finally:
        await hub.close()


async def test_the_watchers_of_a_quiet_channel_are_told_together_and_a_busy_one_is_left_alone() -> None:
    pubsub = FlakyPubSub(failing_subscribes=0, failing_reads=0)
    # The busy channel has news every 0.05 s: only a stall of the loop near a whole second could
    # make it look quiet.
    hub = EventHub(FakeRedis(pubsub), QueueBudget(100, 1 << 20, 1 << 24), idle_seconds=1.0)
    try:
        quiet = [await hub.subscribe("ub:{q}:events") for _ in range(2)]
        busy = await hub.subscribe("ub:{b}:events")
        for _ in range(50):
            await pubsub.messages.put({"type": "smessage", "channel": b"ub:{b}:events", "data": b"UB1 x"})
            await asyncio.sleep(0.05)
        assert [await asyncio.wait_for(watcher.get(), 5) for watcher in quiet] == [IDLE, IDLE]
        received = [_data(busy.queue.get_nowait()) for _ in range(busy.queue.qsize())]
        assert IDLE not in received
        assert received == [b"UB1 x"] * 50
    finally:
        await hub.close()


async def test_a_watcher_with_news_queued_is_not_told_idle_and_markers_cost_no_budget() -> None:
    budget = QueueBudget(100, 1 << 20, 1 << 24)
    subscription = Subscription("ub:{s}:events", budget)
    subscription.deliver(IDLE)
    subscription.deliver(IDLE)  # not piled up behind the first
    assert subscription.queue.qsize() == 1
    assert budget.total_bytes == 0
    event = LiveEvent(b"UB1 1 2 3 0\n")
    subscription.deliver(event)
    assert budget.total_bytes == 3 * len(event.data)  # as received, decoded and encoded
    assert await subscription.get() == IDLE
    subscription.deliver(IDLE)
    assert subscription.queue.qsize() == 1  # the event is still to be read
    assert await subscription.get() is event
    assert budget.total_bytes == 0


def test_a_released_subscription_counts_nothing_delivered_after_and_gives_back_what_it_held() -> None:
    budget = QueueBudget(max_events=10, max_bytes=1 << 20, max_total_bytes=1 << 20)
    subscription = Subscription("ch", budget)
    subscription.deliver(LiveEvent(b"UB1 1 2 0 0\n"))
    assert subscription.hold(100, limit=1 << 20)
    assert budget.total_bytes > 100
    subscription.release()
    assert budget.total_bytes == 0
    subscription.deliver(LiveEvent(b"UB1 2 2 0 0\n"))  # a delivery racing the watcher's departure
    subscription.deliver(RESYNC)
    assert budget.total_bytes == 0
    assert subscription.queue.empty()


def test_own_writes_held_past_the_watchers_budget_must_go() -> None:
    budget = QueueBudget(max_events=10, max_bytes=1000, max_total_bytes=1 << 20)
    subscription = Subscription("ch", budget)
    assert subscription.hold(600, limit=1 << 20)
    assert not subscription.hold(600, limit=1 << 20)  # past the watcher's 1000 bytes
    subscription.unhold()
    assert subscription.hold(600, limit=2000)
    assert not subscription.hold(1400, limit=2000)  # at the limit given
    subscription.unhold()
    assert budget.total_bytes == 0
