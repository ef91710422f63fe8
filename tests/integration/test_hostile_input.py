"""Hostile input gets a clear INVALID_ARGUMENT (or UNAUTHENTICATED first), never UNKNOWN or INTERNAL."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from bridge_server.config import Settings
from tests.integration.helpers import create_session
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

METHODS = [method.name for method in pb.DESCRIPTOR.services_by_name["UnifiedBridge"].methods]
GARBAGE = [b"\xff", b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x08" * 7, bytes(range(256))]


def _raw(
    channel: grpc.Channel, method: str, data: bytes, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.RpcError:
    path = f"/unified_bridge.v1.UnifiedBridge/{method}"
    identity = {"request_serializer": None, "response_deserializer": None}
    try:
        if method == "WatchSession":
            for _ in channel.unary_stream(path, **identity)(data, timeout=5, metadata=metadata):
                pass
        else:
            channel.unary_unary(path, **identity)(data, timeout=5, metadata=metadata)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{method} accepted {data!r}")


@pytest.mark.parametrize("method", METHODS)
def test_malformed_bytes_are_invalid_argument(frontend, method: str) -> None:
    with grpc.insecure_channel(frontend.target) as channel:
        for data in GARBAGE:
            error = _raw(channel, method, data)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (data, error.details())
            assert "is not a valid" in (error.details() or "")


def test_malformed_bytes_from_a_stranger_are_unauthenticated_first(frontend_factory) -> None:
    guarded = frontend_factory(auth_tokens="secret")
    with grpc.insecure_channel(guarded.target) as channel:
        assert _raw(channel, "GetSession", b"\xff").code() == grpc.StatusCode.UNAUTHENTICATED
        authorized = _raw(channel, "GetSession", b"\xff", (("authorization", "Bearer secret"),))
        assert authorized.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("bound", [-1e300, 1e300, 10**30, -(10**30)])
def test_huge_bounds_are_accepted_as_doubles(stub, session_id: str, bound: float) -> None:
    create_session(stub, session_id)
    request = pb.RegisterVariableRequest(
        session_id=session_id,
        name="n",
        type=pb.VARIABLE_TYPE_INTEGER,
        value=pb.Value(integer_value=5),
        constraints=pb.Constraints(min=float(bound)) if bound < 0 else pb.Constraints(max=float(bound)),
    )
    created = stub.RegisterVariable(request)
    assert created.variable.value.integer_value == 5


@pytest.mark.parametrize("tokens", [" , ", ",", "  ,,  , "])
def test_an_auth_setting_without_a_usable_token_is_a_startup_error(tokens: str) -> None:
    with pytest.raises(ValueError, match="holds no usable token"):
        Settings(auth_tokens=tokens)
    with pytest.raises(ValueError, match="holds no usable token"):
        Settings.from_env({"BRIDGE_AUTH_TOKENS": tokens})


def test_no_auth_setting_is_open(stub) -> None:
    assert Settings(auth_tokens="").auth_tokens == ""
    assert isinstance(stub, pb_grpc.UnifiedBridgeStub)


def test_more_concurrent_calls_than_connections_wait_instead_of_failing(frontend_factory, session_id) -> None:
    """With a pool of 2 connections, 40 concurrent calls queue for a connection: none fails."""
    from concurrent.futures import ThreadPoolExecutor

    small_pool = frontend_factory(redis_max_connections=2)
    with grpc.insecure_channel(small_pool.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        with ThreadPoolExecutor(40) as pool:
            sessions = list(
                pool.map(
                    lambda _: stub.GetSession(pb.GetSessionRequest(session_id=session_id), timeout=30),
                    range(200),
                )
            )
    assert {s.session_id for s in sessions} == {session_id}


def test_a_huge_glob_is_refused_at_once(stub, session_id: str) -> None:
    """fnmatch's translation is quadratic: '[a-' * 30000 held the event loop for 30 s."""
    create_session(stub, session_id)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListVariables(pb.ListVariablesRequest(session_id=session_id, pattern="[a-" * 30000), timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 512" in (refused.value.details() or "")


def _open_watch(channel: grpc.Channel, session_id: str) -> Any:
    """A watch stream that is open and caught up (its first event has arrived)."""
    call = pb_grpc.UnifiedBridgeStub(channel).WatchSession(pb.WatchSessionRequest(session_id=session_id))
    next(call)
    return call


def _refused_watch(channel: grpc.Channel, session_id: str) -> grpc.RpcError:
    call = pb_grpc.UnifiedBridgeStub(channel).WatchSession(pb.WatchSessionRequest(session_id=session_id))
    with pytest.raises(grpc.RpcError) as refused:
        next(call)
    return refused.value


def test_watch_streams_are_limited_per_connection_and_per_frontend(frontend_factory, session_id) -> None:
    limited = frontend_factory(max_watch_streams=5, max_watch_streams_per_connection=3)
    # Two connections (channels to one target share a connection unless told otherwise).
    own = [("grpc.use_local_subchannel_pool", 1)]
    first = grpc.insecure_channel(limited.target, options=own)
    second = grpc.insecure_channel(limited.target, options=own)
    with first, second:
        create_session(pb_grpc.UnifiedBridgeStub(first), session_id)
        on_first = [_open_watch(first, session_id) for _ in range(3)]
        past_connection = _refused_watch(first, session_id)
        assert past_connection.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "this connection already holds 3 watch streams" in (past_connection.details() or "")
        on_second = [_open_watch(second, session_id) for _ in range(2)]
        past_frontend = _refused_watch(second, session_id)
        assert past_frontend.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "this frontend already holds 5 watch streams" in (past_frontend.details() or "")
        # A closed stream frees its slot; other calls were never held up.
        on_first.pop().cancel()
        stub = pb_grpc.UnifiedBridgeStub(first)
        assert (
            stub.GetSession(pb.GetSessionRequest(session_id=session_id), timeout=5).session_id == session_id
        )

        def reopened() -> bool:
            try:
                on_first.append(_open_watch(first, session_id))
            except grpc.RpcError:
                return False
            return True

        from bridge_server.testing import wait_until

        wait_until(reopened, "a slot freed by a closed stream")
        for call in on_first + on_second:
            call.cancel()


def test_a_batch_event_carries_only_the_values_that_fit(frontend_factory, session_id: str) -> None:
    """Each value under its limit, the batch's event over the message limit: it used to break every
    watcher of the session. Values past half a message are left out ("read it"), the event goes out."""
    from unified_bridge import connect

    small = frontend_factory(max_message_bytes=64 * 1024, max_value_bytes=20 * 1024)
    with connect(small.target) as client, client.session(session_id) as writer:
        for name in "abc":
            writer.register_variable(name, "string", "")
        watcher = pb_grpc.UnifiedBridgeStub(grpc.insecure_channel(small.target))
        events = watcher.WatchSession(
            pb.WatchSessionRequest(session_id=session_id, from_now=True), timeout=10
        )
        assert next(events).kind == pb.EVENT_KIND_CAUGHT_UP
        big = {name: name * (19 * 1024) for name in "abc"}  # 57 KiB: the request fits, the event would not
        assert all(writer.update_variables(big, atomic=True).values())
        event = next(events)
        events.cancel()
        assert event.kind == pb.EVENT_KIND_UPDATED
        assert [c.name for c in event.changes] == list("abc")
        carried = [c.name for c in event.changes if c.value.WhichOneof("kind")]
        assert carried == ["a"]  # 19 KiB of a 32 KiB budget; the others would not fit
        assert all(c.version == 1 for c in event.changes)
        # A context whose cache held the old values reads the new ones.
        with client.session(session_id) as reader:
            assert reader.get_variables(list("abc")) == big


def test_responses_page_by_bytes(frontend_factory, session_id: str) -> None:
    """Each value under its limit, all of them over the message limit: GetVariables and
    ListVariables used to fail. A full response now says what follows; the SDK asks for it."""
    from unified_bridge import connect

    small = frontend_factory(max_message_bytes=256 * 1024, max_value_bytes=100 * 1024)
    values = {f"v{i}": str(i) * (90 * 1024) for i in range(10)}  # 900 KiB in all
    with connect(small.target) as client, client.session(session_id, cache=False) as ctx:
        for name, value in values.items():
            ctx.register_variable(name, "string", value)
        stub = pb_grpc.UnifiedBridgeStub(grpc.insecure_channel(small.target))
        first = stub.ListVariables(pb.ListVariablesRequest(session_id=session_id), timeout=10)
        assert 0 < len(first.variables) < 10
        assert first.next_page_token == first.variables[-1].name
        batch = stub.GetVariables(pb.GetVariablesRequest(session_id=session_id, names_or_ids=list(values)))
        assert 0 < len(batch.variables) < 10
        assert list(batch.deferred) == list(values)[len(batch.variables) :]
        assert {v["name"]: v["value"] for v in ctx.list_variables()} == values
        assert ctx.get_variables(list(values)) == values
        assert [v["name"] for v in ctx.list_variables("v[2-4]")] == ["v2", "v3", "v4"]


@pytest.mark.parametrize("token", ["²", "١٢", "-1", "18446744073709551616", "x" * 100, "1.5"])
def test_page_tokens_that_are_not_cursors(stub, token: str) -> None:
    """'²' passed str.isdigit() and then failed int() (INTERNAL, found by the fuzz test)."""
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListSessions(pb.ListSessionsRequest(page_token=token), timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
