"""Every RPC under hostile input: ids, names, values, constraints, patterns, globs, batches, revisions,
page tokens, imports and raw garbage. Success or a clear status, never INTERNAL or UNKNOWN (or a
stall: each call has a deadline, and a frontend that stops answering fails it as DEADLINE_EXCEEDED)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import create_session
from tests.integration.test_errors_and_limits import constraints, metadata, texts, values
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

NEVER = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
METHODS = [method.name for method in pb.DESCRIPTOR.services_by_name["UnifiedBridge"].methods]

# What abuse looks like: huge repetitions, deep nesting, quadratic globs, ids of other sessions.
hostile_patterns = st.sampled_from(
    [
        "a{1000000000}",
        "a{10000000}",
        "((a{1000}){1000}){1000}",
        "(" * 499 + "a" + ")" * 499,
        "(" * 5000,
        "^(a|a)*$",
        "[a-" * 300,
        "x" * 5000,
        "\\",
        "(?P<n>a)(?P=n)",
    ]
) | st.text(max_size=60)
hostile_globs = st.sampled_from(["[a-" * 30000, "*" * 600, "[!]", "[", "**[[[", ""]) | st.text(max_size=40)
hostile_ids = st.sampled_from(
    ["", "x" * 10_000, "a{b}", "a:b", "*", "?", "[x]", "ub:{other}:vars", "\x00", "é", " "]
) | st.text(max_size=50)


@pytest.fixture(scope="module")
def target(frontend) -> Iterator[tuple[pb_grpc.UnifiedBridgeStub, grpc.Channel, str]]:
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        sid = f"fuzzall_{uuid.uuid4().hex}"
        create_session(stub, sid)
        yield stub, channel, sid


def _clear(call: Any, request: Any, *, stream: bool = False) -> None:
    failure: grpc.RpcError | None = None
    try:
        if stream:
            for _ in call(request, timeout=0.2):
                pass
        else:
            call(request, timeout=10)
    except grpc.RpcError as error:
        failure = error
    if failure is None:
        return
    if stream and failure.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return  # a watch that follows the session: it was answered, and kept open until the deadline
    assert failure.code() not in NEVER, (failure.code(), failure.details(), request)
    assert failure.details(), request


@FUZZ
@given(method=st.sampled_from(METHODS), garbage=st.binary(max_size=64))
def test_raw_bytes(target, method: str, garbage: bytes) -> None:
    _, channel, _ = target
    path = f"/unified_bridge.v1.UnifiedBridge/{method}"
    if method == "WatchSession":
        _clear(channel.unary_stream(path), garbage, stream=True)
    else:
        _clear(channel.unary_unary(path), garbage)


@FUZZ
@given(pattern=hostile_patterns, value=st.text(max_size=30))
def test_patterns(target, pattern: str, value: str) -> None:
    stub, _, sid = target
    name = f"p{uuid.uuid4().hex[:8]}"
    request = pb.RegisterVariableRequest(
        session_id=sid,
        name=name,
        type=pb.VARIABLE_TYPE_STRING,
        value=pb.Value(string_value=value),
        constraints=pb.Constraints(pattern=pattern),
    )
    _clear(stub.RegisterVariable, request)
    _clear(stub.DeleteVariable, pb.DeleteVariableRequest(session_id=sid, name_or_id=name))


@FUZZ
@given(pattern=hostile_globs)
def test_globs(target, pattern: str) -> None:
    stub, _, sid = target
    _clear(stub.ListVariables, pb.ListVariablesRequest(session_id=sid, pattern=pattern))


@FUZZ
@given(session_id=hostile_ids, revision=st.integers(0, 2**64 - 1), from_now=st.booleans())
def test_sessions_and_watches(target, session_id: str, revision: int, from_now: bool) -> None:
    stub, _, sid = target
    _clear(stub.GetSession, pb.GetSessionRequest(session_id=session_id))
    _clear(stub.Heartbeat, pb.HeartbeatRequest(session_id=session_id))
    _clear(stub.DeleteVariable, pb.DeleteVariableRequest(session_id=session_id, name_or_id=session_id))
    watched = sid if from_now else session_id
    request = pb.WatchSessionRequest(session_id=watched, from_revision=revision, from_now=from_now)
    _clear(stub.WatchSession, request, stream=True)


@FUZZ
@given(token=st.text(max_size=40) | st.integers(-1, 2**70).map(str), size=st.integers(0, 2**32 - 1))
def test_list_sessions_pages(target, token: str, size: int) -> None:
    stub, _, _ = target
    _clear(stub.ListSessions, pb.ListSessionsRequest(page_token=token, page_size=size))


@FUZZ
@given(
    variables=st.lists(
        st.tuples(texts, st.text(max_size=30), st.integers(-3, 12), values, constraints, metadata),
        max_size=4,
    ),
    revision=st.integers(0, 2**64 - 1),
    ttl=st.integers(0, 2**32 - 1),
    meta=metadata,
)
def test_imports(target, variables: list[Any], revision: int, ttl: int, meta: dict[str, str]) -> None:
    stub, _, _ = target
    request = pb.ImportSessionRequest(
        session_id=f"imp_{uuid.uuid4().hex}",
        ttl_seconds=ttl,
        metadata=meta,
        revision=revision,
        variables=[
            pb.Variable(id=var_id, name=name, type=type_number, value=value, constraints=c, metadata=m)
            for name, var_id, type_number, value, c, m in variables
        ],
    )
    _clear(stub.ImportSession, request)
    _clear(stub.DeleteSession, pb.DeleteSessionRequest(session_id=request.session_id))


def test_the_worst_inputs_do_not_stall_other_clients(frontend_factory, session_id: str) -> None:
    """While one client sends the inputs that used to stall a frontend for seconds (a{10000000}
    patterns, quadratic globs, garbage bytes), another client's reads keep being answered.

    The bound (2 s for any one read) is generous for a shared 2-core machine and far below the 17 s
    stalls these inputs caused; it is the one wall-clock bound in the suite, as the issue asks."""

    isolated = frontend_factory()
    worst = ["a{10000000}", "((a{1000}){1000}){1000}", "(" * 499 + "a" + ")" * 499]
    stop = threading.Event()
    with grpc.insecure_channel(isolated.target) as attacker, grpc.insecure_channel(isolated.target) as victim:
        hostile = pb_grpc.UnifiedBridgeStub(attacker)
        reader = pb_grpc.UnifiedBridgeStub(victim)
        create_session(reader, session_id)

        def attack() -> int:
            sent = 0
            while not stop.is_set():
                for pattern in worst:
                    _clear(
                        hostile.RegisterVariable,
                        pb.RegisterVariableRequest(
                            session_id=session_id,
                            name="victim_of_abuse",
                            type=pb.VARIABLE_TYPE_STRING,
                            value=pb.Value(string_value="a"),
                            constraints=pb.Constraints(pattern=pattern),
                        ),
                    )
                _clear(
                    hostile.ListVariables,
                    pb.ListVariablesRequest(session_id=session_id, pattern="[a-" * 30000),
                )
                _clear(attacker.unary_unary("/unified_bridge.v1.UnifiedBridge/GetSession"), b"\xff\xff")
                sent += 5
            return sent

        with ThreadPoolExecutor(2) as pool:
            attackers = [pool.submit(attack) for _ in range(2)]
            slowest = 0.0
            for _ in range(200):
                started = time.perf_counter()
                reader.GetSession(pb.GetSessionRequest(session_id=session_id), timeout=30)
                slowest = max(slowest, time.perf_counter() - started)
            stop.set()
            sent = sum(future.result(60) for future in attackers)
    assert sent > 50  # the abuse really ran alongside
    assert slowest < 2.0, f"a read waited {slowest:.2f} s behind hostile requests"
