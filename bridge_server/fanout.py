"""Event fan-out: one pub/sub connection per frontend (per node on a cluster), shared by every watcher.

Each session channel is subscribed once, however many watchers follow it, and unsubscribed when the
last one leaves. On a Redis Cluster a session's channel lives on the node that owns its slot; one
reader per node reads them all concurrently (polling nodes in turn would delay every message by the
other nodes' poll timeouts). A watcher is told to re-read the change log (`RESYNC`) whenever live delivery may
have skipped something: the pub/sub connection dropped, or the watcher fell too far behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from redis.asyncio.cluster import ClusterPubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["END_OF_STREAM", "RESYNC", "EventHub", "Subscription"]

log = logging.getLogger(__name__)

# Queued instead of an event: live delivery may have missed events, read the log.
RESYNC: Final = b""
# Queued when the frontend shuts down: end the stream cleanly (events always start with b"UB1").
END_OF_STREAM: Final = b"\x00end"

_READ_TIMEOUT = 1.0
_RECONNECT_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)


class Subscription:
    """One watcher's view of one session channel."""

    def __init__(self, channel: str, max_queue: int) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._max_queue = max_queue

    def deliver(self, data: bytes) -> None:
        if self.queue.qsize() >= self._max_queue:
            # A slow watcher: drop what it has not read and let it catch up from the log.
            while not self.queue.empty():
                self.queue.get_nowait()
            data = RESYNC
        self.queue.put_nowait(data)


class EventHub:
    def __init__(self, redis: Any, max_queue: int, confirm_timeout: float = 5.0) -> None:
        self._pubsub = redis.pubsub()
        self._max_queue = max_queue
        # How long a new subscription waits for Redis to confirm it (a stalled Redis would hold a
        # watch open forever otherwise).
        self._confirm_timeout = confirm_timeout
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._confirmations: dict[str, list[asyncio.Future[None]]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}  # "" for a single Redis, else node names
        self._lock = asyncio.Lock()
        self._closed = False

    async def subscribe(self, channel: str) -> Subscription:
        """Follow a channel; returns once Redis confirms, so nothing published after is missed."""
        subscription = Subscription(channel, self._max_queue)
        async with self._lock:
            watchers = self._subscriptions.setdefault(channel, set())
            watchers.add(subscription)
            if len(watchers) > 1:
                return subscription
            confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._confirmations.setdefault(channel, []).append(confirmed)
            try:
                await self._pubsub.ssubscribe(channel)
            except BaseException:
                watchers.discard(subscription)
                if not watchers:
                    del self._subscriptions[channel]
                self._confirmations.pop(channel, None)
                raise
            self._ensure_readers()
        try:
            await asyncio.wait_for(asyncio.shield(confirmed), self._confirm_timeout)
        except TimeoutError:
            await self.unsubscribe(subscription)
            raise RedisTimeoutError(
                f"Redis did not confirm the subscription within {self._confirm_timeout} s"
            ) from None
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        async with self._lock:
            watchers = self._subscriptions.get(subscription.channel)
            if watchers is None:
                return
            watchers.discard(subscription)
            if not watchers:
                del self._subscriptions[subscription.channel]
                with contextlib.suppress(RedisConnectionError, RedisTimeoutError, RuntimeError):
                    await self._pubsub.sunsubscribe(subscription.channel)

    def end_all_streams(self) -> None:
        for watchers in self._subscriptions.values():
            for subscription in watchers:
                subscription.queue.put_nowait(END_OF_STREAM)

    async def close(self) -> None:
        self._closed = True
        for reader in self._readers.values():
            reader.cancel()
        for reader in self._readers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    def _ensure_readers(self) -> None:
        if not isinstance(self._pubsub, ClusterPubSub):
            self._start_reader("", lambda: self._pubsub.get_message(timeout=_READ_TIMEOUT))
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

    def _still_subscribed_on(self, name: str) -> bool:
        if not isinstance(self._pubsub, ClusterPubSub):
            return True
        return name in self._pubsub.node_pubsub_mapping

    async def _read_forever(self, name: str, read: Callable[[], Awaitable[dict[str, Any] | None]]) -> None:
        failures = 0
        while not self._closed and self._still_subscribed_on(name):
            try:
                message = await read()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
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
            for subscription in tuple(self._subscriptions.get(channel, ())):
                subscription.deliver(message["data"])

    def _tell_everyone_to_resync(self) -> None:
        for watchers in self._subscriptions.values():
            for subscription in watchers:
                subscription.deliver(RESYNC)


def _node_reader(pubsub: ClusterPubSub, node: Any) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def read() -> dict[str, Any] | None:
        message: dict[str, Any] | None = await pubsub.get_sharded_message(
            target_node=node, timeout=_READ_TIMEOUT
        )
        return message

    return read
