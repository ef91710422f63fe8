"""The frontend's memory after a flood of hostile requests stays within a stated bound."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from tests.integration.helpers import create_session
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

REQUESTS = 10_000
BOUND_MB = 64  # register/delete cycles alone used to add ~290 MB over 10,000 requests


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _hostile(stub: pb_grpc.UnifiedBridgeStub, channel: grpc.Channel, session_id: str, n: int) -> None:
    failure: grpc.RpcError | None = None
    try:
        _send(stub, channel, session_id, n)
    except grpc.RpcError as error:
        failure = error
    if failure is not None:
        assert failure.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), failure.details()


def _send(stub: pb_grpc.UnifiedBridgeStub, channel: grpc.Channel, session_id: str, n: int) -> None:
    kind = n % 5
    if kind in (0, 1):  # a register/delete cycle under a new name: the definition cache's worst case
        name = f"v{n}"
        stub.RegisterVariable(
            pb.RegisterVariableRequest(
                session_id=session_id,
                name=name,
                type=pb.VARIABLE_TYPE_STRING,
                value=pb.Value(string_value="x" * 200),
                constraints=pb.Constraints(pattern=f"^x{{{n % 300}}}"),
            ),
            timeout=10,
        )
        stub.DeleteVariable(pb.DeleteVariableRequest(session_id=session_id, name_or_id=name), timeout=10)
    elif kind == 2:
        huge = pb.Constraints(pattern="a{10000000}")
        stub.RegisterVariable(
            pb.RegisterVariableRequest(
                session_id=session_id,
                name="p",
                type=pb.VARIABLE_TYPE_STRING,
                value=pb.Value(string_value="a"),
                constraints=huge,
            ),
            timeout=10,
        )
    elif kind == 3:
        quadratic = pb.ListVariablesRequest(session_id=session_id, pattern="[a-" * 30000)
        stub.ListVariables(quadratic, timeout=10)
    else:
        garbage = bytes([n % 256]) * 64
        channel.unary_unary("/unified_bridge.v1.UnifiedBridge/GetVariables")(garbage, timeout=10)


@pytest.mark.slow
def test_memory_after_ten_thousand_hostile_requests(frontend_process_factory, session_id: str) -> None:
    frontend = frontend_process_factory()
    counter = itertools.count()
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        for _ in range(500):  # warm up: imports, caches of the ordinary kind, allocator arenas
            _hostile(stub, channel, session_id, next(counter))
        before = _rss_mb(frontend.pid)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: _hostile(stub, channel, session_id, next(counter)), range(REQUESTS)))
        after = _rss_mb(frontend.pid)
    assert after - before < BOUND_MB, f"RSS grew from {before:.0f} to {after:.0f} MB"
