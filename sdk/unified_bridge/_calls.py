"""The one place where the SDK talks gRPC: retries, deadlines and error translation.

Every unary RPC of both session contexts goes through :func:`call_unary` or :func:`call_unary_async`;
every ``grpc.RpcError`` becomes a :class:`~unified_bridge.errors.BridgeError` in :func:`translate_error`
and nowhere else. Retrying is off unless the caller says the call is idempotent (``retry=True``).

Session logic is written once as *flows*: generators that yield :class:`Rpc` (and :class:`Pause`) steps
and receive responses (or have the translated error thrown in). :func:`run_flow` and
:func:`run_flow_async` are the only code that differs between the sync and async worlds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc

from unified_bridge._backoff import backoff_delay
from unified_bridge.errors import (
    CURRENT_VERSION_METADATA_KEY,
    ERROR_METADATA_KEY,
    BridgeError,
    BridgeUnavailableError,
    VersionConflictError,
    error_class_for_status,
)

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_TIMEOUT",
    "Flow",
    "Pause",
    "RetryPolicy",
    "Rpc",
    "async_invoker",
    "call_unary",
    "call_unary_async",
    "invoker",
    "run_flow",
    "run_flow_async",
    "translate_error",
]

logger = logging.getLogger("unified_bridge")

T = TypeVar("T")

#: Default deadline of one call, in seconds, retries included.
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How idempotent calls are retried: capped exponential backoff with full jitter.

    Only the status codes in ``retry_on`` are retried, at most ``max_attempts`` attempts in all, and
    never past the call's deadline.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.02
    max_backoff: float = 1.0
    multiplier: float = 2.0
    retry_on: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAVAILABLE})

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return backoff_delay(attempt, self.initial_backoff, self.max_backoff, self.multiplier)


DEFAULT_RETRY_POLICY = RetryPolicy()


def _status_of(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    try:
        return exc.code(), exc.details() or ""
    except AttributeError:  # an RpcError that is not a Call: rare, but grpc raises some
        return grpc.StatusCode.UNKNOWN, str(exc)


def _trailing(exc: grpc.RpcError) -> dict[str, str]:
    """The text entries of the trailing metadata the server sent with the error."""
    try:
        # (key, value) pairs: _Metadatum named tuples (sync) or a grpc.aio.Metadata (asyncio).
        trailing = cast("Iterable[tuple[str, Any]]", exc.trailing_metadata() or ())
    except AttributeError:  # not a Call (see _status_of)
        return {}
    return {key: value for key, value in trailing if isinstance(value, str)}


def translate_error(exc: grpc.RpcError) -> BridgeError:
    """The :class:`BridgeError` for a failed RPC; the caller raises it ``from exc``.

    The class is the one the server names in its trailing metadata, else the status code's. The gRPC
    status stays on the error as ``grpc_status`` (a ``grpc.StatusCode``).
    """
    code, details = _status_of(exc)
    trailing = _trailing(exc)
    error_class = error_class_for_status(code.name, details, trailing.get(ERROR_METADATA_KEY))
    message = details or f"{code.name.lower()}: the call failed without a message"
    if error_class is BridgeUnavailableError and code is grpc.StatusCode.DEADLINE_EXCEEDED:
        message = f"No frontend answered before the deadline ({details})"
    error = error_class(message)
    current = trailing.get(CURRENT_VERSION_METADATA_KEY, "")
    if isinstance(error, VersionConflictError) and current.isdigit():
        error.current_version = int(current)
    error.grpc_status = code
    return error


# What grpc raises for a call on a closed channel: ValueError("Cannot invoke RPC on closed channel!")
# (sync) and grpc.aio's UsageError("Channel is closed.") -- no class of their own, so the message tells.
_CLOSED_CHANNEL: tuple[type[Exception], ...] = (ValueError, grpc.aio.UsageError)


def _is_closed_channel(exc: Exception) -> bool:
    return "closed" in str(exc).lower()


class _Attempts:
    """The retry decisions of one call, for the sync and the async loop alike.

    A failure that a retry follows (UNAVAILABLE) leaves the first attempt's outcome unknown: it may
    have been applied with only its reply lost. A later attempt that then fails with a status a
    repeat of an applied call would cause (``ambiguous``: a compare-and-set finding the version it
    wrote itself, a delete finding nothing to delete) is not a definite answer: it is raised as
    BridgeUnavailableError, "outcome unknown", never as the conflict it looks like.
    """

    __slots__ = ("ambiguous", "attempt", "deadline", "policy", "retry", "unknown")

    def __init__(self, timeout: float, retry: bool, policy: RetryPolicy, ambiguous: frozenset[str]) -> None:
        self.deadline = time.monotonic() + timeout
        self.retry = retry
        self.policy = policy
        self.ambiguous = ambiguous
        self.attempt = 0
        self.unknown = False

    def next_timeout(self) -> float:
        self.attempt += 1
        return max(self.deadline - time.monotonic(), 0.001)

    def failed(self, exc: BaseException) -> float:
        """Seconds to wait before the next attempt; raises the BridgeError to report instead."""
        if not isinstance(exc, grpc.RpcError):  # see _CLOSED_CHANNEL
            raise BridgeError(f"the client's channel is closed ({exc}); open a new client") from exc
        code, details = _status_of(exc)
        if self.unknown and code.name in self.ambiguous:
            raise BridgeUnavailableError(
                f"outcome unknown: an earlier attempt failed without an answer and may have been applied; "
                f"the retry then found {code.name} ({details})"
            ) from exc
        delay = self._retry_delay(code, details)
        if delay is None:
            raise translate_error(exc) from exc
        self.unknown = True
        return delay

    def _retry_delay(self, code: grpc.StatusCode, details: str) -> float | None:
        policy = self.policy
        if not self.retry or self.attempt >= policy.max_attempts or code not in policy.retry_on:
            return None
        delay = policy.backoff(self.attempt)
        if time.monotonic() + delay >= self.deadline:
            return None
        logger.debug("retrying after %s (%s), attempt %d, in %.3fs", code.name, details, self.attempt, delay)
        return delay


def call_unary(
    method: Callable[..., T],
    request: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retry: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    ambiguous: frozenset[str] = frozenset(),
) -> T:
    """Call a unary RPC with a deadline, retrying on ``policy.retry_on`` only when ``retry`` is true
    (see :class:`_Attempts` for ``ambiguous``)."""
    attempts = _Attempts(timeout, retry, policy, ambiguous)
    while True:
        try:
            return method(request, timeout=attempts.next_timeout())
        except grpc.RpcError as exc:
            delay = attempts.failed(exc)
        except _CLOSED_CHANNEL as exc:
            if not _is_closed_channel(exc):
                raise
            delay = attempts.failed(exc)
        time.sleep(delay)


async def call_unary_async(
    method: Callable[..., Any],
    request: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retry: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    ambiguous: frozenset[str] = frozenset(),
) -> Any:
    """The asyncio twin of :func:`call_unary` (``grpc.aio`` multi-callables)."""
    attempts = _Attempts(timeout, retry, policy, ambiguous)
    while True:
        try:
            return await method(request, timeout=attempts.next_timeout())
        except grpc.RpcError as exc:
            delay = attempts.failed(exc)
        except _CLOSED_CHANNEL as exc:
            if not _is_closed_channel(exc):
                raise
            delay = attempts.failed(exc)
        await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class Rpc:
    """A flow step: call ``method`` (a stub attribute name) with ``request``."""

    method: str
    request: Any
    retry: bool = False
    #: Status names that, after a retry, mean "outcome unknown" rather than what they say.
    ambiguous: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Pause:
    """A flow step: wait ``seconds`` (backoff between compare-and-set attempts)."""

    seconds: float


Flow = Generator[Rpc | Pause, Any, T]


def invoker(stub: Any, timeout: float, policy: RetryPolicy) -> Callable[[Rpc], Any]:
    """The ``invoke`` of :func:`run_flow` for ``stub``: each step through :func:`call_unary`."""

    def invoke(step: Rpc) -> Any:
        method = getattr(stub, step.method)
        return call_unary(
            method, step.request, timeout=timeout, retry=step.retry, policy=policy, ambiguous=step.ambiguous
        )

    return invoke


def async_invoker(stub: Any, timeout: float, policy: RetryPolicy) -> Callable[[Rpc], Any]:
    """The ``invoke`` of :func:`run_flow_async` for a ``grpc.aio`` ``stub``: returns awaitables."""

    def invoke(step: Rpc) -> Any:
        method = getattr(stub, step.method)
        return call_unary_async(
            method, step.request, timeout=timeout, retry=step.retry, policy=policy, ambiguous=step.ambiguous
        )

    return invoke


def run_flow(flow: Flow[T], invoke: Callable[[Rpc], Any]) -> T:
    """Drive ``flow`` to its end with blocking I/O.

    Every exception of a step is thrown into the flow (a KeyboardInterrupt included), so its cleanup
    ("outcome unknown: invalidate") runs at once, and the flow is closed however the run ends.
    """
    reply: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply, error = None, None
            try:
                if isinstance(step, Pause):
                    time.sleep(step.seconds)
                else:
                    reply = invoke(step)
            except BaseException as exc:
                error = exc
    finally:
        flow.close()


async def run_flow_async(flow: Flow[T], invoke: Callable[[Rpc], Any]) -> T:
    """Drive ``flow`` to its end with asyncio; ``invoke`` returns an awaitable. A cancellation, like
    any exception, is thrown into the flow (see :func:`run_flow`)."""
    reply: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply, error = None, None
            try:
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                else:
                    reply = await invoke(step)
            except BaseException as exc:
                error = exc
    finally:
        flow.close()
