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
import random
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc

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
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return random.uniform(cap / 2, cap)


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


def _retry_delay(
    exc: grpc.RpcError, attempt: int, policy: RetryPolicy, retry: bool, deadline: float
) -> float | None:
    """Seconds to wait before the next attempt, or None when the error must be raised now."""
    if not retry or attempt >= policy.max_attempts:
        return None
    code, details = _status_of(exc)
    if code not in policy.retry_on:
        return None
    delay = policy.backoff(attempt)
    if time.monotonic() + delay >= deadline:
        return None
    logger.debug("retrying after %s (%s), attempt %d, in %.3fs", code.name, details, attempt, delay)
    return delay


def call_unary(
    method: Callable[..., T],
    request: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retry: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
) -> T:
    """Call a unary RPC with a deadline, retrying on ``policy.retry_on`` only when ``retry`` is true."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            return method(request, timeout=max(deadline - time.monotonic(), 0.001))
        except grpc.RpcError as exc:
            delay = _retry_delay(exc, attempt, policy, retry, deadline)
            if delay is None:
                raise translate_error(exc) from exc
        time.sleep(delay)


async def call_unary_async(
    method: Callable[..., Any],
    request: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retry: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
) -> Any:
    """The asyncio twin of :func:`call_unary` (``grpc.aio`` multi-callables)."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            return await method(request, timeout=max(deadline - time.monotonic(), 0.001))
        except grpc.RpcError as exc:
            delay = _retry_delay(exc, attempt, policy, retry, deadline)
            if delay is None:
                raise translate_error(exc) from exc
        await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class Rpc:
    """A flow step: call ``method`` (a stub attribute name) with ``request``."""

    method: str
    request: Any
    retry: bool = False


@dataclass(frozen=True, slots=True)
class Pause:
    """A flow step: wait ``seconds`` (backoff between compare-and-set attempts)."""

    seconds: float


Flow = Generator[Rpc | Pause, Any, T]


def invoker(stub: Any, timeout: float, policy: RetryPolicy) -> Callable[[Rpc], Any]:
    """The ``invoke`` of :func:`run_flow` for ``stub``: each step through :func:`call_unary`."""

    def invoke(step: Rpc) -> Any:
        method = getattr(stub, step.method)
        return call_unary(method, step.request, timeout=timeout, retry=step.retry, policy=policy)

    return invoke


def async_invoker(stub: Any, timeout: float, policy: RetryPolicy) -> Callable[[Rpc], Any]:
    """The ``invoke`` of :func:`run_flow_async` for a ``grpc.aio`` ``stub``: returns awaitables."""

    def invoke(step: Rpc) -> Any:
        method = getattr(stub, step.method)
        return call_unary_async(method, step.request, timeout=timeout, retry=step.retry, policy=policy)

    return invoke


def run_flow(flow: Flow[T], invoke: Callable[[Rpc], Any]) -> T:
    """Drive ``flow`` to its end with blocking I/O."""
    reply: Any = None
    error: BridgeError | None = None
    while True:
        try:
            step = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        reply, error = None, None
        if isinstance(step, Pause):
            time.sleep(step.seconds)
            continue
        try:
            reply = invoke(step)
        except BridgeError as exc:
            error = exc


async def run_flow_async(flow: Flow[T], invoke: Callable[[Rpc], Any]) -> T:
    """Drive ``flow`` to its end with asyncio; ``invoke`` returns an awaitable."""
    reply: Any = None
    error: BridgeError | None = None
    while True:
        try:
            step = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        reply, error = None, None
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
            continue
        try:
            reply = await invoke(step)
        except BridgeError as exc:
            error = exc
