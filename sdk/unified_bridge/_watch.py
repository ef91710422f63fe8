"""Following a session's change stream: the cache's background follower and ``ctx.watch()``.

The decisions live in :class:`WatchCursor` (where to resume, whether a revision was skipped, how long
to back off, which frontend to try next). One loop follows a stream across reconnections,
:func:`stream_events` (and its asyncio twin :func:`astream_events`); the cache's followers
(:class:`ThreadFollower`, :class:`TaskFollower`) and the iterators behind ``ctx.watch()``
(:func:`iter_changes`, :func:`aiter_changes`) only say what to do with its events.

A follower resumes from the last revision it saw, so the server replays what it missed; the cache is
still emptied whenever a stream is lost and serves again once the new stream
reports CAUGHT_UP. A lost stream moves to the next frontend of the client's list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from unified_bridge._backoff import backoff_delay
from unified_bridge._calls import translate_error
from unified_bridge._core import SessionCore
from unified_bridge._models import ChangeEvent, decode_event
from unified_bridge.errors import BridgeError, SessionNotFoundError
from unified_bridge.proto import unified_bridge_pb2 as pb2

__all__ = [
    "MIN_OPEN_TIMEOUT",
    "StreamBackoff",
    "TaskFollower",
    "ThreadFollower",
    "WatchCursor",
    "aiter_changes",
    "astream_events",
    "iter_changes",
    "stream_events",
]

logger = logging.getLogger("unified_bridge")


#: The shortest open deadline a context gives its streams, whatever its call timeout: a replay may
#: take a moment on a loaded machine, and a too eager deadline would only reconnect again and again.
MIN_OPEN_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class StreamBackoff:
    """How a watch stream reconnects: capped exponential backoff (with jitter) between attempts, and
    how long a new stream may take to send its first event before it counts as lost (a frontend
    that accepted the stream but hangs is left for the next one)."""

    initial: float = 0.02
    maximum: float = 2.0
    multiplier: float = 2.0
    open_timeout: float = 10.0

    def delay(self, failures: int) -> float:
        return backoff_delay(failures, self.initial, self.maximum, self.multiplier)


class WatchTargets(Protocol):
    """Where watch streams may go: one stub per frontend."""

    @property
    def watch_target_names(self) -> list[str]: ...

    def watch_stub(self, index: int) -> Any: ...


class WatchCursor:
    """Position in a session's change stream, and the bookkeeping of reconnections."""

    def __init__(
        self,
        session_id: str,
        revision: int | None,
        targets: int,
        backoff: StreamBackoff,
        writer: str = "",
    ) -> None:
        self.session_id = session_id
        self.revision = revision  # None: start at the current revision (from_now)
        # The token the context puts on its writes: the stream lists their events instead of
        # sending them (see WatchSessionRequest.writer).
        self.writer = writer
        # (revision, time) of the last change seen: a reconnect asks the frontend to check that the
        # log still holds that change there (after a failover another write may have that revision).
        self._last_change: tuple[int, Timestamp] | None = None
        self.caught_up = False
        self.failures = 0
        self.target = random.randrange(targets) if targets > 1 else 0
        self._targets = targets
        self._backoff = backoff
        self.open_timeout = backoff.open_timeout

    def request(self) -> pb2.WatchSessionRequest:
        self.caught_up = False
        if self.revision is None:
            return pb2.WatchSessionRequest(session_id=self.session_id, from_now=True, writer=self.writer)
        request = pb2.WatchSessionRequest(
            session_id=self.session_id, from_revision=self.revision, writer=self.writer
        )
        if self._last_change is not None and self._last_change[0] == self.revision:
            request.from_revision_time.CopyFrom(self._last_change[1])
        return request

    def expected_revision(self, event: pb2.WatchEvent) -> int:
        """The revision the first change of ``event`` (its first own write, if it lists any) must
        carry if nothing was skipped (its own when we cannot know)."""
        if self.revision is not None:
            return self.revision + 1
        return event.own_writes[0].revision if event.own_writes else event.revision

    def is_duplicate(self, event: pb2.WatchEvent) -> bool:
        change = event.kind not in (pb2.EVENT_KIND_CAUGHT_UP, pb2.EVENT_KIND_HISTORY_GONE)
        return change and self.revision is not None and event.revision <= self.revision

    def advance(self, event: pb2.WatchEvent) -> None:
        if event.kind == pb2.EVENT_KIND_CAUGHT_UP:
            self.caught_up = True
            self.failures = 0
        elif event.kind == pb2.EVENT_KIND_OWN_WRITES and event.own_writes:
            self._last_change = (event.revision, event.own_writes[-1].time)
        elif event.kind != pb2.EVENT_KIND_HISTORY_GONE and event.HasField("time"):
            self._last_change = (event.revision, event.time)
        if (
            event.kind == pb2.EVENT_KIND_HISTORY_GONE
            or self.revision is None
            or event.revision > self.revision
        ):
            self.revision = event.revision

    def lost(self, error: BridgeError | None) -> float | None:
        """The stream failed (or ended): seconds to wait before reconnecting, None to give up."""
        if isinstance(error, SessionNotFoundError):
            return None
        self.failures += 1
        self.target = (self.target + 1) % self._targets
        return self._backoff.delay(self.failures)


def new_writer_token() -> str:
    """A context's writer token: 16 URL-safe characters, unguessable."""
    return secrets.token_urlsafe(12)


def _error_of(exc: BaseException) -> BridgeError | None:
    return translate_error(exc) if isinstance(exc, grpc.RpcError) else None


# What a loop needs from its driver: open a stream (None: stop), and after a stream is lost, how many
# seconds to wait before the next (None: stop; it may raise instead).
OpenStream = Callable[[int, pb2.WatchSessionRequest], Any]
OnLost = Callable[[BaseException | None], float | None]
Apply = Callable[[pb2.WatchEvent], None]


def stream_events(
    open_stream: OpenStream, cursor: WatchCursor, lost: OnLost, wait: Callable[[float], object], apply: Apply
) -> Generator[pb2.WatchEvent, None, None]:
    """A session's new events from ``cursor`` on, across lost streams: the one blocking loop, for the
    cache's follower and for ``watch()`` alike.

    Each event is handed to ``apply`` (an exception there counts as a lost stream: reconnect), then
    the cursor moves past it, then it is yielded. SESSION_DELETED ends the loop.
    """
    while True:
        call = open_stream(cursor.target, cursor.request())
        if call is None:
            return
        failure: BaseException | None = None
        opening = threading.Timer(cursor.open_timeout, call.cancel)  # no first event: lost
        opening.daemon = True
        opening.start()
        try:
            for event in call:
                opening.cancel()
                if cursor.is_duplicate(event):
                    continue
                apply(event)
                cursor.advance(event)
                yield event
                if event.kind == pb2.EVENT_KIND_SESSION_DELETED:
                    return
        except grpc.RpcError as exc:
            failure = exc
        except Exception as exc:
            logger.exception("session %s: error while following the change stream", cursor.session_id)
            failure = exc
        finally:
            opening.cancel()
            call.cancel()
        delay = lost(failure)
        if delay is None:
            return
        wait(delay)


async def astream_events(
    open_stream: OpenStream, cursor: WatchCursor, lost: OnLost, apply: Apply
) -> AsyncGenerator[pb2.WatchEvent, None]:
    """The asyncio twin of :func:`stream_events` (a cancellation cancels the stream and propagates)."""
    while True:
        call = open_stream(cursor.target, cursor.request())
        if call is None:
            return
        failure: BaseException | None = None
        gave_up: list[bool] = []

        def give_up(call: Any = call, gave_up: list[bool] = gave_up) -> None:
            gave_up.append(True)
            call.cancel()

        opening = asyncio.get_running_loop().call_later(cursor.open_timeout, give_up)
        try:
            async for event in call:
                opening.cancel()
                if cursor.is_duplicate(event):
                    continue
                apply(event)
                cursor.advance(event)
                yield event
                if event.kind == pb2.EVENT_KIND_SESSION_DELETED:
                    return
        except grpc.RpcError as exc:
            failure = exc
        except asyncio.CancelledError:
            if not gave_up:
                raise  # the task itself is cancelled
            failure = TimeoutError(f"no event within {cursor.open_timeout} s of opening the stream")
        except Exception as exc:
            logger.exception("session %s: error while following the change stream", cursor.session_id)
            failure = exc
        finally:
            opening.cancel()
            call.cancel()
        delay = lost(failure)
        if delay is None:
            return
        await asyncio.sleep(delay)


def _ignore(event: pb2.WatchEvent) -> None:
    return None


class _FollowerBase:
    """What both cache followers share: the cursor, applying events to the core, and losing streams."""

    def __init__(self, core: SessionCore, targets: WatchTargets, backoff: StreamBackoff) -> None:
        self._core = core
        self._targets = targets
        # The context's writes carry this token from now on, and its stream is not sent them back.
        core.writer = core.writer or new_writer_token()
        self.cursor = WatchCursor(
            core.session_id, None, len(targets.watch_target_names), backoff, writer=core.writer
        )
        self.reconnects = 0

    @property
    def target(self) -> str:
        """The frontend the current stream goes to."""
        return self._targets.watch_target_names[self.cursor.target]

    def _apply(self, event: pb2.WatchEvent) -> None:
        self._core.on_watch_event(event, self.cursor.expected_revision(event))

    def _lost(self, exc: BaseException | None) -> float | None:
        self._core.on_stream_lost()
        self.reconnects += 1
        error = _error_of(exc) if exc is not None else None
        delay = self.cursor.lost(error)
        logger.info(
            "session %s: watch stream lost (%s); %s",
            self._core.session_id,
            error or "ended",
            "giving up" if delay is None else f"reconnecting to {self.target} in {delay:.3f}s",
        )
        return delay


class ThreadFollower(_FollowerBase):
    """Follows the stream on a daemon thread (sync contexts)."""

    def __init__(self, core: SessionCore, targets: WatchTargets, backoff: StreamBackoff) -> None:
        super().__init__(core, targets, backoff)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._call: Any = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"ub-watch-{core.session_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the stream is caught up (the cache serves); False on timeout."""
        return self._ready.wait(timeout)

    def _open(self, target: int, request: pb2.WatchSessionRequest) -> Any:
        stub = self._targets.watch_stub(target)
        with self._lock:  # stop() cancels what is opened here
            if self._stop.is_set():
                return None
            self._call = stub.WatchSession(request)
            return self._call

    def _lost_here(self, exc: BaseException | None) -> float | None:
        self._ready.clear()
        return None if self._stop.is_set() else self._lost(exc)

    def _run(self) -> None:
        for event in stream_events(self._open, self.cursor, self._lost_here, self._stop.wait, self._apply):
            if event.kind == pb2.EVENT_KIND_CAUGHT_UP:
                self._ready.set()
        self._core.on_stream_lost()  # the session is gone, or the follower stopped

    def stop(self) -> None:
        """Stop following and wait for the thread; the cache stops serving."""
        with self._lock:
            self._stop.set()
            if self._call is not None:
                self._call.cancel()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        self._core.on_stream_lost()


class TaskFollower(_FollowerBase):
    """Follows the stream in an asyncio task (async contexts)."""

    def __init__(self, core: SessionCore, targets: WatchTargets, backoff: StreamBackoff) -> None:
        super().__init__(core, targets, backoff)
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"ub-watch-{self._core.session_id}"
        )

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def _open(self, target: int, request: pb2.WatchSessionRequest) -> Any:
        return self._targets.watch_stub(target).WatchSession(request)

    def _lost_here(self, exc: BaseException | None) -> float | None:
        self._ready.clear()
        return self._lost(exc)

    async def _run(self) -> None:
        async for event in astream_events(self._open, self.cursor, self._lost_here, self._apply):
            if event.kind == pb2.EVENT_KIND_CAUGHT_UP:
                self._ready.set()
        self._core.on_stream_lost()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._core.on_stream_lost()


# --- ctx.watch() ---------------------------------------------------------------------------------


def _user_event(event: pb2.WatchEvent, names: Collection[str] | None) -> ChangeEvent | None:
    """The event to hand to a watch() caller, or None (caught-up markers, other variables)."""
    if event.kind in (pb2.EVENT_KIND_CAUGHT_UP, pb2.EVENT_KIND_OWN_WRITES):
        return None
    decoded = decode_event(event)
    if names is None or not decoded.changes:
        return decoded
    changes = tuple(c for c in decoded.changes if c.name in names or c.id in names)
    if not changes:
        return None
    return ChangeEvent(decoded.kind, decoded.revision, changes, decoded.time)


def _raising_when_final(cursor: WatchCursor) -> OnLost:
    """A watch() iterator's answer to a lost stream: reconnect, or raise what ended it for good."""

    def lost(failure: BaseException | None) -> float | None:
        error = _error_of(failure) if failure is not None else None
        delay = cursor.lost(error)
        if delay is None:
            assert error is not None
            raise error from failure
        return delay

    return lost


def iter_changes(
    stub_for: Callable[[int], Any], cursor: WatchCursor, names: Collection[str] | None
) -> Iterator[ChangeEvent]:
    """Change events from ``cursor`` on, across reconnections, until the session is deleted."""

    def open_stream(target: int, request: pb2.WatchSessionRequest) -> Any:
        return stub_for(target).WatchSession(request)

    events = stream_events(open_stream, cursor, _raising_when_final(cursor), time.sleep, _ignore)
    with contextlib.closing(events):  # closing this iterator cancels the stream at once
        for event in events:
            user_event = _user_event(event, names)
            if user_event is not None:
                yield user_event


async def aiter_changes(
    stub_for: Callable[[int], Any], cursor: WatchCursor, names: Collection[str] | None
) -> AsyncIterator[ChangeEvent]:
    """The asyncio twin of :func:`iter_changes`."""

    def open_stream(target: int, request: pb2.WatchSessionRequest) -> Any:
        return stub_for(target).WatchSession(request)

    events = astream_events(open_stream, cursor, _raising_when_final(cursor), _ignore)
    async with contextlib.aclosing(events):
        async for event in events:
            user_event = _user_event(event, names)
            if user_event is not None:
                yield user_event
