"""Event fan-out: one pub/sub connection per frontend, shared by every watcher on it.

Each session channel is subscribed once, however many watchers follow it, and unsubscribed when the
last one leaves. A watcher is told to re-read the change log (`RESYNC`) whenever live delivery may
have skipped something: the pub/sub connection dropped, or the watcher fell too far behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

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
    def __init__(self, redis: Any, max_queue: int) -> None:
        self._pubsub = redis.pubsub()
        self._max_queue = max_queue
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._confirmations: dict[str, list[asyncio.Future[None]]] = {}
        self._reader: asyncio.Task[None] | None = None
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
            self._ensure_reader()
        await confirmed
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
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_forever(), name="bridge-event-hub")

    async def _read_forever(self) -> None:
        failures = 0
        while not self._closed:
            try:
                message = await self._pubsub.get_message(timeout=_READ_TIMEOUT)
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
