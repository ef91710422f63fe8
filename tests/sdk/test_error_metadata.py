"""The real server names the error class in trailing metadata, and the SDK raises that class."""

from __future__ import annotations

import grpc
import pytest

from unified_bridge import SessionNotFoundError, VariableNotFoundError, connect_async
from unified_bridge._calls import translate_error
from unified_bridge.errors import ERROR_METADATA_KEY
from unified_bridge.proto import unified_bridge_pb2 as pb2
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


def error_names(exc: grpc.RpcError) -> list[str]:
    return [value for key, value in exc.trailing_metadata() or () if key == ERROR_METADATA_KEY]


def test_unary_errors_name_their_class(stub: pb_grpc.UnifiedBridgeStub, session_id: str) -> None:
    with pytest.raises(grpc.RpcError) as no_session:
        stub.GetVariable(pb2.GetVariableRequest(session_id=session_id, name_or_id="x"))
    assert no_session.value.code() is grpc.StatusCode.NOT_FOUND
    assert error_names(no_session.value) == ["SessionNotFoundError"]
    assert type(translate_error(no_session.value)) is SessionNotFoundError

    stub.CreateSession(pb2.CreateSessionRequest(session_id=session_id))
    with pytest.raises(grpc.RpcError) as no_variable:
        stub.GetVariable(pb2.GetVariableRequest(session_id=session_id, name_or_id="x"))
    assert error_names(no_variable.value) == ["VariableNotFoundError"]
    assert type(translate_error(no_variable.value)) is VariableNotFoundError


def test_watch_errors_name_their_class(stub: pb_grpc.UnifiedBridgeStub, session_id: str) -> None:
    stream = stub.WatchSession(pb2.WatchSessionRequest(session_id=session_id, from_now=True))
    with pytest.raises(grpc.RpcError) as info:
        next(stream)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    assert error_names(info.value) == ["SessionNotFoundError"]


async def test_asyncio_errors_name_their_class(frontend, session_id: str) -> None:
    async with grpc.aio.insecure_channel(frontend.target) as channel:
        aio_stub = pb_grpc.UnifiedBridgeStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await aio_stub.DeleteVariable(pb2.DeleteVariableRequest(session_id=session_id, name_or_id="x"))
    assert error_names(info.value) == ["SessionNotFoundError"]
    assert type(translate_error(info.value)) is SessionNotFoundError
    async with connect_async(frontend.target) as client:
        ctx = await client.session(session_id, cache=False)
        with pytest.raises(VariableNotFoundError):
            await ctx.get_variable("x")
        await ctx.close()
