"""A minimal blocking client on the raw generated stubs: what the SDK costs is measured against it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import grpc

from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

__all__ = ["RawClient", "new_session_id"]


def new_session_id(label: str) -> str:
    return f"bench-{label}-{uuid.uuid4().hex[:8]}"


def _int(value: int) -> pb.Value:
    return pb.Value(integer_value=value)


class RawClient:
    """Integer variables in one session, over one channel to one frontend."""

    def __init__(self, target: str, session_id: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.UnifiedBridgeStub(self.channel)
        self.session_id = session_id
        self.stub.CreateSession(pb.CreateSessionRequest(session_id=session_id))

    def register(self, name: str, value: int = 0) -> None:
        self.stub.RegisterVariable(
            pb.RegisterVariableRequest(
                session_id=self.session_id, name=name, type=pb.VARIABLE_TYPE_INTEGER, value=_int(value)
            )
        )

    def register_string(self, name: str, value: str) -> None:
        self.stub.RegisterVariable(
            pb.RegisterVariableRequest(
                session_id=self.session_id,
                name=name,
                type=pb.VARIABLE_TYPE_STRING,
                value=pb.Value(string_value=value),
            )
        )

    def get(self, name: str) -> int:
        request = pb.GetVariableRequest(session_id=self.session_id, name_or_id=name)
        return int(self.stub.GetVariable(request).value.integer_value)

    def set(self, name: str, value: int, expected_version: int | None = None) -> int:
        request = pb.SetVariableRequest(session_id=self.session_id, name_or_id=name, value=_int(value))
        if expected_version is not None:
            request.expected_version = expected_version
        return int(self.stub.SetVariable(request).version)

    def set_many(self, values: dict[str, int], atomic: bool) -> None:
        updates = [pb.VariableUpdate(name_or_id=name, value=_int(v)) for name, v in values.items()]
        request = pb.SetVariablesRequest(session_id=self.session_id, updates=updates, atomic=atomic)
        response = self.stub.SetVariables(request)
        if not all(result.ok for result in response.results):
            raise RuntimeError(f"batch update failed: {response.results[0].error.message}")

    def get_many(self, names: Sequence[str]) -> int:
        request = pb.GetVariablesRequest(session_id=self.session_id, names_or_ids=list(names))
        return len(self.stub.GetVariables(request).variables)

    def delete(self, name: str) -> None:
        self.stub.DeleteVariable(pb.DeleteVariableRequest(session_id=self.session_id, name_or_id=name))

    def delete_session(self) -> None:
        self.stub.DeleteSession(pb.DeleteSessionRequest(session_id=self.session_id))

    def close(self) -> None:
        self.channel.close()
