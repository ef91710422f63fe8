"""Event fan-out: one pub/sub connection per frontend (per node on a cluster), shared by every watcher.

Each session channel is subscribed once, however many watchers follow it, and unsubscribed when the
last one leaves. On a Redis Cluster a session's channel lives on the node that owns its slot; one
reader per node reads them all concurrently (polling nodes in turn would delay every message by the
other nodes' poll timeouts). Behind Sentinel the connection follows the master: it reconnects to the
one Sentinel names. A watcher is told to re-read the change log (`RESYNC`) whenever live delivery may
have skipped something: the pub/sub connection dropped, or the watcher fell too far behind.

A message is handed to every watcher of its channel as one `LiveEvent`, decoded and encoded for the
wire once per frontend. A quiet channel's watchers are told so (`IDLE`) by one timer of the hub,
all at once, so that they check their session with one shared read (`VariableStore.shared_watch_position`)
instead of a timer and a read each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from redis.asyncio.cluster import ClusterPubSub
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge_server.events import LiveEvent

__all__ = [
    "END_OF_STREAM",
    "IDLE",
    "OWN_WRITES_DUE",
    "RESYNC",
    "Delivery",
    "EventHub",
    "QueueBudget",
    "Subscription",
]

log = logging.getLogger(__name__)

# Queued instead of an event: live delivery may have missed events, read the log.
RESYNC: Final = b""
# Queued when the frontend shuts down: end the stream cleanly (events always start with b"UB1").
END_OF_STREAM: Final = b"\x00end"
# Queued when the channel has been quiet for the idle check interval: check the session.
IDLE: Final = b"\x00idle"
# Queued when the watcher's own writes, held back, are due to be listed (`Subscription.flush_soon`).
OWN_WRITES_DUE: Final = b"\x00own"

#: What a watcher's queue holds: an event of its channel, or one of the markers above.
Delivery = LiveEvent | bytes

_READ_TIMEOUT = 1.0
# What a pub/sub command or read raises while its connection is lost or being re-made. RuntimeError:
# redis-py lets a command's reconnect read the socket the reader task is already waiting on.
# ResponseError: a reply meant for a handshake that another task ran on the same connection.
_CONNECTION_TROUBLE = (RedisConnectionError, RedisTimeoutError, OSError, RuntimeError, ResponseError)
_RECONNECT_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)


@dataclasses.dataclass(slots=True)
class QueueBudget:
    """What the watchers' queues may hold: per watcher (events and bytes) and per frontend (bytes)."""

    max_events: int
    max_bytes: int
    max_total_bytes: int
    total_bytes: int = 0
    overflows: int = 0


class Subscription:
    """One watcher's view of one session channel.

    Its queue is bounded by events and bytes, and all watchers' queues together by bytes. A watcher
    that falls behind past a bound loses what it had not read and gets RESYNC instead: it goes on
    from the change log, where it left off, without a gap (memory stays bounded, the watcher is
    slower, nothing is lost).
    """

    def __init__(self, channel: str, budget: QueueBudget, own_writes_flush: float = 0.0) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._budget = budget
        self._bytes = 0
        #: How long the watcher's own writes may wait for a message to ride on (0: not held back).
        self.own_writes_flush = own_writes_flush
        self._flush: asyncio.TimerHandle | None = None
        self._held = 0  # bytes of own writes the watcher holds back (counted like queued events)
        self._released = False

    def hold(self, size: int, limit: int) -> bool:
        """Count ``size`` more bytes of own writes held back; False once they reach ``limit`` or
        pass the watcher's or the frontend's budget (then they must go now)."""
        self._held += size
        self._budget.total_bytes += size
        budget = self._budget
        return (
            self._held < limit
            and self._held <= budget.max_bytes
            and budget.total_bytes <= budget.max_total_bytes
        )

    def unhold(self) -> None:
        """The own writes held back are sent: they no longer count."""
        self._budget.total_bytes -= self._held
        self._held = 0

    def flush_soon(self) -> None:
        """The watcher holds back its own writes: queue OWN_WRITES_DUE after the flush delay (one
        timer at a time, however many writes it holds)."""
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.own_writes_flush, self._flush_due)

    def _flush_due(self) -> None:
        self._flush = None
        self.queue.put_nowait(OWN_WRITES_DUE)

    def deliver(self, item: Delivery) -> None:
        if self._released:
            return  # the watcher is gone: nothing may count against the budget for it any more
        if item is IDLE and not self.queue.empty():
            return  # the watcher has news to read; it checks the session when it runs out
        budget, size = self._budget, _size(item)
        if (
            self.queue.qsize() >= budget.max_events
            or self._bytes + size > budget.max_bytes
            or budget.total_bytes + size > budget.max_total_bytes
        ):
            self._drop_queued()
            budget.overflows += 1
            item, size = RESYNC, 0
        self.queue.put_nowait(item)
        self._bytes += size
        budget.total_bytes += size

    async def get(self) -> Delivery:
        item = await self.queue.get()
        size = _size(item)
        self._bytes -= size
        self._budget.total_bytes -= size
        return item

    def _drop_queued(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self._budget.total_bytes -= self._bytes
        self._bytes = 0

    def end(self) -> None:
        """The frontend is shutting down: the stream ends after what is queued (never dropped)."""
        self.queue.put_nowait(END_OF_STREAM)

    def release(self) -> None:
        """The watcher is gone: what it had queued no longer counts."""
        self._released = True
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self.unhold()
        self._drop_queued()


def _size(item: Delivery) -> int:
    """What a queued item counts against the budgets: an event three times its size (it may come to
    hold its decoded values and its wire bytes besides), a marker nothing."""
    return 3 * len(item.data) if isinstance(item, LiveEvent) else 0


class EventHub:
    def __init__(
        self,
        redis: Any,
        budget: QueueBudget,
        confirm_timeout: float = 5.0,
        idle_seconds: float = 5.0,
        own_writes_flush: float = 0.0,
    ) -> None:
        self._pubsub = redis.pubsub()
        self.budget = budget
        self._own_writes_flush = own_writes_flush
        # How long a new subscription waits for Redis to confirm it (a stalled Redis would hold a
        # watch open forever otherwise).
        self._confirm_timeout = confirm_timeout
        self._idle_seconds = idle_seconds
        self._heard: dict[str, float] = {}  # channel -> when it last had news (time.monotonic)
        self._idle_timer: asyncio.Task[None] | None = None
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._confirmations: dict[str, list[asyncio.Future[None]]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}  # "" for a single Redis, else node names
        self._lock = asyncio.Lock()
        self._closed = False

    async def subscribe(self, channel: str) -> Subscription:
        """Follow a channel; returns once Redis confirms, so nothing published after is missed.

        A subscription sent while the connection is being lost or re-made is tried again until the
        confirmation timeout; past it the call fails as Redis being unreachable (UNAVAILABLE).
        """
        subscription = Subscription(channel, self.budget, self._own_writes_flush)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._confirm_timeout
        failures = 0
        while True:
            try:
                confirmed = await self._join(channel, subscription)
                break
            except _CONNECTION_TROUBLE as exc:
                failures += 1
                if loop.time() >= deadline:
                    raise RedisConnectionError(f"could not subscribe to session events: {exc}") from exc
                await asyncio.sleep(_RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)])
        if confirmed is None:
            return subscription  # the channel was followed already
        try:
            await asyncio.wait_for(asyncio.shield(confirmed), max(deadline - loop.time(), 0.0))
        except TimeoutError:
            await self.unsubscribe(subscription)
            raise RedisTimeoutError(
                f"Redis did not confirm the subscription within {self._confirm_timeout} s"
            ) from None
        return subscription

    async def _join(self, channel: str, subscription: Subscription) -> asyncio.Future[None] | None:
        """Add ``subscription``; SSUBSCRIBE if it is the channel's first. The future Redis's
        confirmation resolves, or None when the channel was followed already."""
        async with self._lock:
            watchers = self._subscriptions.setdefault(channel, set())
            watchers.add(subscription)
            self._ensure_idle_timer()
            if len(watchers) > 1:
                return None
            self._heard[channel] = time.monotonic()
            confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._confirmations.setdefault(channel, []).append(confirmed)
            try:
                await self._pubsub.ssubscribe(channel)
            except BaseException:
                watchers.discard(subscription)
                if not watchers:
                    del self._subscriptions[channel]
                    self._heard.pop(channel, None)
                self._confirmations.pop(channel, None)
                raise
            self._ensure_readers()
            return confirmed

    async def unsubscribe(self, subscription: Subscription) -> None:
        try:
            await self._leave(subscription)
        finally:
            # Released once nothing more can be delivered to it: a delivery after the release would
            # count against the frontend's budget for good.
            subscription.release()

    async def _leave(self, subscription: Subscription) -> None:
        async with self._lock:
            watchers = self._subscriptions.get(subscription.channel)
            if watchers is None:
                return
            watchers.discard(subscription)
            if not watchers:
                del self._subscriptions[subscription.channel]
                self._heard.pop(subscription.channel, None)
                with contextlib.suppress(*_CONNECTION_TROUBLE):
                    await self._pubsub.sunsubscribe(subscription.channel)

    def end_all_streams(self) -> None:
        for watchers in self._subscriptions.values():
            for subscription in watchers:
                subscription.end()

    async def close(self) -> None:
        self._closed = True
        tasks = [*self._readers.values(), *([self._idle_timer] if self._idle_timer else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    def _ensure_idle_timer(self) -> None:
        if self._idle_timer is None or self._idle_timer.done():
            self._idle_timer = asyncio.create_task(self._tell_quiet_channels(), name="bridge-events-idle")

    async def _tell_quiet_channels(self) -> None:
        """Every half interval, tell the watchers of each channel quiet for a whole one: IDLE."""
        while not self._closed:
            await asyncio.sleep(self._idle_seconds / 2)
            now = time.monotonic()
            for channel, watchers in self._subscriptions.items():
                if now - self._heard.get(channel, now) >= self._idle_seconds:
                    self._heard[channel] = now
                    for subscription in watchers:
                        subscription.deliver(IDLE)

    def _ensure_readers(self) -> None:
        if not isinstance(self._pubsub, ClusterPubSub):
            self._start_reader("", self._read_single)
            return
        pubsub: ClusterPubSub = self._pubsub
        for name in list(pubsub.node_pubsub_mapping):
            self._start_reader(name, _node_reader(pubsub, pubsub.cluster.get_node(node_name=name)))

    def _start_reader(self, name: str, read: Callable[[], Awaitable[dict[str, Any] | None]]) -> None:
        reader = self._readers.get(name)
        if reader is None or reader.done():
            self._readers[name] = asyncio.create_task(
                self._read_forever(name, read), name=f"bridge-events-{name}"
            )

    async def _read_single(self) -> dict[str, Any] | None:
        # After a drop, reconnect under the lock that subscribe and unsubscribe hold: redis-py lets
        # two tasks reconnect one connection at once, and the loser's socket is left open or its
        # command is written to a connection torn down under it.
        connection = self._pubsub.connection
        if connection is not None and _on_a_former_master(self._pubsub.connection_pool, connection):
            # Sentinel named a new master while this connection stayed up: follow it, resync.
            await connection.disconnect()
            raise RedisConnectionError("the event subscription was on a former master")
        if connection is not None:
            # Under the lock even when connected: a subscribe may be re-making the connection, and
            # `is_connected` turns true before its handshake replies are read.
            async with self._lock:
                if not connection.is_connected:
                    await self._pubsub.connect()
        try:
            message: dict[str, Any] | None = await self._pubsub.get_message(timeout=_READ_TIMEOUT)
        except (ResponseError, RuntimeError):
            # A reply meant for another task's handshake, or a read that raced one: the stream is
            # out of step. Drop the connection; the next read makes a clean one and resubscribes.
            if connection is not None:
                await connection.disconnect()
            raise
        return message

    def _still_subscribed_on(self, name: str) -> bool:
        if not isinstance(self._pubsub, ClusterPubSub):
            return True
        return name in self._pubsub.node_pubsub_mapping

    async def _read_forever(self, name: str, read: Callable[[], Awaitable[dict[str, Any] | None]]) -> None:
        failures = 0
        while not self._closed and self._still_subscribed_on(name):
            try:
                message = await read()
            except _CONNECTION_TROUBLE as exc:
                delay = _RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)]
                failures += 1
                if failures == 1:
                    log.warning("event subscription to Redis lost (%s); reconnecting", exc)
                self._tell_everyone_to_resync()
                await asyncio.sleep(delay)
                continue
            if failures:
                log.info("event subscription to Redis restored")
                failures = 0
                # Messages published while we were away are gone from pub/sub, not from the log.
                self._tell_everyone_to_resync()
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        kind = message["type"]
        if kind == "ssubscribe":
            for confirmed in self._confirmations.pop(channel, []):
                if not confirmed.done():
                    confirmed.set_result(None)
        elif kind == "smessage":
            watchers = self._subscriptions.get(channel)
            if watchers:
                self._heard[channel] = time.monotonic()  # not the loop's clock: a getpid() per call on 3.11
                event = LiveEvent(message["data"])
                for subscription in tuple(watchers):
                    subscription.deliver(event)

    def _tell_everyone_to_resync(self) -> None:
        for watchers in self._subscriptions.values():
            for subscription in watchers:
                subscription.deliver(RESYNC)


def _on_a_former_master(pool: Any, connection: Any) -> bool:
    """Whether a pub/sub connection of a Sentinel pool is on another server than the master the pool
    last learned (on its latest connect). Sentinel kills the clients of a master it demotes, but not
    of one it could not reach (a partition): this connection would hear nothing there, unnoticed."""
    if not isinstance(pool, SentinelConnectionPool) or pool.master_address is None:
        return False
    return bool(connection.is_connected and (connection.host, connection.port) != pool.master_address)


def _node_reader(pubsub: ClusterPubSub, node: Any) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def read() -> dict[str, Any] | None:
        message: dict[str, Any] | None = await pubsub.get_sharded_message(
            target_node=node, timeout=_READ_TIMEOUT
        )
        return message

    return read
