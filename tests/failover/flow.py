"""What the failover tests share: a writer whose every write is one variable, a watcher that keeps
the session's variable names from the change stream, and polling with deadlines."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bridge_server.keys import session_keys
from unified_bridge import BridgeUnavailableError, VariableType, connect

# Every SDK call's deadline; a call that fails is an unknown outcome, never a success.
CALL_TIMEOUT = 5.0
_POLL = 0.05
_END = "end"  # the variable whose registration ends a test's writes


@contextlib.contextmanager
def uncached_session(target: str, session_id: str) -> Iterator[Any]:
    """A context on ``session_id`` through its own client, reading the bridge each time."""
    with (
        connect(target, timeout=CALL_TIMEOUT) as client,
        client.session(session_id, cache=False) as ctx,
    ):
        yield ctx


def poll(predicate: Callable[[], bool], what: str, deadline: float) -> None:
    """Return once `predicate` holds; fail naming `what` after `deadline` seconds."""
    give_up = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up after {deadline} s waiting for {what}")
        time.sleep(_POLL)


def readiness(target: str) -> str:
    """The frontend's readiness health ("SERVING", "NOT_SERVING"), or "UNREACHABLE"."""
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="readiness"), timeout=2
            )
    except grpc.RpcError:
        return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def replication_offsets(master_port: int) -> tuple[int, int]:
    """(the master's replication offset, the least any online replica acknowledged), from the master."""
    with redis.Redis(port=master_port, socket_timeout=2) as client:
        info = client.info("replication")
    acknowledged = [
        int(value["offset"])
        for key, value in info.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    ]
    return int(info["master_repl_offset"]), min(acknowledged, default=-1)


def subscribed_on(port: int, session_id: str) -> bool:
    """Whether some client (the frontend's event subscription) follows the session's channel there."""
    channel = session_keys("ub", session_id).channel.encode()
    with redis.Redis(port=port, socket_timeout=2) as client:
        return channel in client.pubsub_shardchannels()


def end_writes(ctx: Any, watcher: Watcher, deadline: float) -> set[str]:
    """Write the variable that ends the test (the watcher stops at it), wait for the watcher, and
    return the names the session holds besides it."""
    register_until_acknowledged(ctx, _END, deadline)
    watcher.join(deadline)
    return {variable["name"] for variable in ctx.list_variables()} - {_END}


def register_until_acknowledged(ctx: Any, name: str, deadline: float) -> None:
    give_up = time.monotonic() + deadline
    while True:
        try:
            ctx.register_variable(name, VariableType.INTEGER, 0)
            return
        except BridgeUnavailableError:
            if time.monotonic() > give_up:
                raise
            time.sleep(_POLL)


class FailoverWrites:
    """One thread registering w0, w1, ... through the SDK: each write is acknowledged or unknown."""

    def __init__(self, target: str, session_id: str) -> None:
        self._target, self._session_id = target, session_id
        self.acknowledged: set[str] = set()
        self.unknown: set[str] = set()
        self.unexpected: list[BaseException] = []
        self.started = time.monotonic()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="failover-writer", daemon=True)

    def start(self) -> FailoverWrites:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with uncached_session(self._target, self._session_id) as ctx:
                index = 0
                while not self._stop.is_set():
                    name, index = f"w{index}", index + 1
                    try:
                        ctx.register_variable(name, VariableType.INTEGER, index)
                    except BridgeUnavailableError:
                        outcome = self.unknown  # may or may not have been applied
                    else:
                        outcome = self.acknowledged
                    with self._cond:
                        outcome.add(name)
                        self._cond.notify_all()
                    self._stop.wait(0.005)  # pace: the machine's cores run the servers too
        except BaseException as exc:  # reported by the test, never swallowed
            with self._cond:
                self.unexpected.append(exc)
                self._cond.notify_all()

    def acknowledged_count(self) -> int:
        with self._cond:
            return len(self.acknowledged)

    def acknowledged_so_far(self) -> set[str]:
        with self._cond:
            return set(self.acknowledged)

    def wait_for_acknowledged(self, count: int, deadline: float) -> None:
        give_up = time.monotonic() + deadline
        with self._cond:
            while len(self.acknowledged) < count:
                assert not self.unexpected, self.unexpected
                remaining = give_up - time.monotonic()
                assert remaining > 0, (
                    f"{len(self.acknowledged)} of {count} writes acknowledged in {deadline} s"
                )
                self._cond.wait(remaining)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(CALL_TIMEOUT * 4)
        assert not self._thread.is_alive(), "the writer did not stop"


class Watcher:
    """Follows the session's change stream from revision 0 until the variable "end" is registered.

    It keeps the set of variable names the stream says exist. A `history_gone` event is the stream
    saying it lost track (a resync): the watcher then reads the variables whole and goes on. A
    revision that skips ahead without one is a silent gap.
    """

    def __init__(self, target: str, session_id: str) -> None:
        self._target, self._session_id = target, session_id
        self.names: set[str] = set()
        self.gaps: list[tuple[int, int]] = []
        self.resyncs = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="failover-watcher", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with uncached_session(self._target, self._session_id) as ctx:
                last: int | None = None
                for event in ctx.watch(from_revision=0):
                    if event.kind == "history_gone":
                        self.resyncs += 1
                        self.names = {variable["name"] for variable in _list_when_reachable(ctx)}
                    elif last is not None and event.revision != last + 1:
                        self.gaps.append((last, event.revision))
                    last = event.revision
                    if event.kind == "registered":
                        self.names.update(change.name for change in event.changes)
                        if _END in self.names:
                            return
        except BaseException as exc:
            self.error = exc

    def join(self, deadline: float) -> None:
        self._thread.join(deadline)
        assert not self._thread.is_alive(), "the watcher never saw the write that ends the test"

    def check(self, final: set[str]) -> None:
        """The watcher's view is the session as it ended, and it never skipped a revision."""
        assert self.error is None, repr(self.error)
        assert not self.gaps, f"silent gaps in the change stream: {self.gaps}"
        assert self.names - {_END} == final, (
            f"the watcher believes in {sorted(self.names - final - {_END})} "
            f"and missed {sorted(final - self.names)}"
        )


def _list_when_reachable(ctx: Any, deadline: float = 60.0) -> list[dict[str, Any]]:
    give_up = time.monotonic() + deadline
    while True:
        try:
            variables: list[dict[str, Any]] = ctx.list_variables()
            return variables
        except BridgeUnavailableError:
            if time.monotonic() > give_up:
                raise
            time.sleep(_POLL)
