"""The gRPC chokepoint: error translation, retries only when asked, deadlines, flows."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from unified_bridge import (
    AlreadyExistsError,
    BridgeError,
    BridgeUnavailableError,
    RetryPolicy,
    SessionNotFoundError,
    ValidationError,
    VariableNotFoundError,
    VersionConflictError,
)
from unified_bridge._calls import Pause, Rpc, call_unary, call_unary_async, run_flow, translate_error
from unified_bridge._core import delete_session, list_sessions
from unified_bridge.errors import ERROR_METADATA_KEY
from unified_bridge.proto import unified_bridge_pb2 as pb2


class FakeRpcError(grpc.RpcError):
    def __init__(
        self, code: grpc.StatusCode, details: str = "", trailing: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailing


class Flaky:
    """Fails with `code` `failures` times, then answers."""

    def __init__(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        self.failures, self.code, self.calls = failures, code, 0
        self.timeouts: list[float] = []

    def __call__(self, request: Any, timeout: float) -> str:
        self.calls += 1
        self.timeouts.append(timeout)
        if self.calls <= self.failures:
            raise FakeRpcError(self.code, "frontend down")
        return f"reply to {request}"


FAST = RetryPolicy(max_attempts=4, initial_backoff=0.0001, max_backoff=0.0002)


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "value 1.5 is above maximum 1.0", ValidationError),
        (grpc.StatusCode.NOT_FOUND, "Variable not found: x", VariableNotFoundError),
        (grpc.StatusCode.NOT_FOUND, "Session not found: s", SessionNotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, "taken", AlreadyExistsError),
        (grpc.StatusCode.FAILED_PRECONDITION, "version 3, expected 2", VersionConflictError),
        (grpc.StatusCode.UNAVAILABLE, "connection refused", BridgeUnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", BridgeUnavailableError),
        (grpc.StatusCode.INTERNAL, "bug", BridgeError),
    ],
)
def test_translate_error(code: grpc.StatusCode, details: str, expected: type[BridgeError]) -> None:
    error = translate_error(FakeRpcError(code, details))
    assert type(error) is expected
    assert error.grpc_status is code  # type: ignore[attr-defined]
    if details:
        assert details in str(error)


@pytest.mark.parametrize(
    ("error_name", "expected"),
    [
        ("SessionNotFoundError", SessionNotFoundError),
        ("VariableNotFoundError", VariableNotFoundError),
        ("SomethingNewError", VariableNotFoundError),  # unknown name: the status code decides
    ],
)
def test_translate_error_trusts_the_class_the_server_names(
    error_name: str, expected: type[BridgeError]
) -> None:
    reworded = "no such session or variable here"  # neither message prefix
    trailing = (("other", "x"), (ERROR_METADATA_KEY, error_name))
    exc = FakeRpcError(grpc.StatusCode.NOT_FOUND, reworded, trailing)
    error = translate_error(exc)
    assert type(error) is expected
    assert str(error) == reworded
    assert error.grpc_status is grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_no_retry_unless_asked() -> None:
    method = Flaky(failures=1)
    with pytest.raises(BridgeUnavailableError) as exc_info:
        call_unary(method, "req", policy=FAST)
    assert method.calls == 1
    assert isinstance(exc_info.value.__cause__, grpc.RpcError)


def test_retry_on_unavailable_when_asked() -> None:
    method = Flaky(failures=2)
    assert call_unary(method, "req", retry=True, policy=FAST) == "reply to req"
    assert method.calls == 3
    assert method.timeouts[1] <= method.timeouts[0]  # one deadline for all attempts


def test_retry_gives_up_after_max_attempts() -> None:
    method = Flaky(failures=10)
    with pytest.raises(BridgeUnavailableError):
        call_unary(method, "req", retry=True, policy=FAST)
    assert method.calls == FAST.max_attempts


def test_other_codes_are_never_retried() -> None:
    method = Flaky(failures=1, code=grpc.StatusCode.FAILED_PRECONDITION)
    with pytest.raises(VersionConflictError):
        call_unary(method, "req", retry=True, policy=FAST)
    assert method.calls == 1


async def test_async_retry() -> None:
    inner = Flaky(failures=1)

    async def method(request: Any, timeout: float) -> str:
        return inner(request, timeout)

    assert await call_unary_async(method, "req", retry=True, policy=FAST) == "reply to req"
    assert inner.calls == 2


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.5)
    assert all(0.05 <= policy.backoff(n) <= 0.5 for n in range(1, 20))
    with pytest.raises(AttributeError):
        policy.max_attempts = 2  # type: ignore[misc]


def test_run_flow_sends_replies_and_throws_errors() -> None:
    def flow() -> Any:
        first = yield Rpc("A", 1)
        yield Pause(0)
        try:
            yield Rpc("B", 2)
        except ValidationError as exc:
            return (first, str(exc))
        return None

    def invoke(step: Rpc) -> Any:
        if step.method == "B":
            raise ValidationError("bad")
        return step.request * 10

    assert run_flow(flow(), invoke) == (10, "bad")


def test_list_sessions_flow_follows_every_page() -> None:
    pages = {"": (["a", "b"], "p2"), "p2": (["c"], "p3"), "p3": ([], "")}
    seen: list[Rpc] = []

    def invoke(step: Rpc) -> Any:
        seen.append(step)
        ids, token = pages[step.request.page_token]
        return pb2.ListSessionsResponse(session_ids=ids, next_page_token=token)

    assert run_flow(list_sessions(), invoke) == ["a", "b", "c"]
    assert [s.request.page_token for s in seen] == ["", "p2", "p3"]
    assert all(s.method == "ListSessions" and s.retry for s in seen)


def test_delete_session_flow_is_retried_and_returns_deleted() -> None:
    def invoke(step: Rpc) -> Any:
        assert (step.method, step.request.session_id, step.retry) == ("DeleteSession", "s1", True)
        return pb2.DeleteSessionResponse(deleted=True)

    assert run_flow(delete_session("s1"), invoke) is True


def test_one_backoff_formula() -> None:
    from unified_bridge._backoff import backoff_delay

    for attempt, cap in ((1, 0.02), (2, 0.04), (3, 0.08), (10, 1.0), (10_000, 1.0)):
        delays = [backoff_delay(attempt, 0.02, 1.0) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in delays)
    assert all(0 <= backoff_delay(3, 0.001, 0.05, full_jitter=True) <= 0.004 for _ in range(200))
